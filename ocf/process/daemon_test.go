package process

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStartDaemonDetaches(t *testing.T) {
	// Not parallel: t.Setenv plants a secret in the agent's environment
	// that must not reach the daemon.
	t.Setenv("OCF_RESKEY_password", "secret")
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "sleep.pid")
	pid := startDaemon(t, Daemon{Path: "/bin/sleep", Args: []string{"30"}, PIDFile: pidfile})

	t.Run("pid file", func(t *testing.T) {
		data, err := os.ReadFile(pidfile)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(data), fmt.Sprintf("%d\n", pid); got != want {
			t.Errorf("pid file holds %q, want %q", got, want)
		}
		fi, err := os.Stat(pidfile)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o644 {
			t.Errorf("pid file mode = %v, want 0644", got)
		}
		leftovers, err := filepath.Glob(filepath.Join(dir, ".*"))
		if err != nil || len(leftovers) != 0 {
			t.Errorf("temporary files left behind: %q (%v)", leftovers, err)
		}
	})

	t.Run("own session", func(t *testing.T) {
		ours, err := readStat(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		st, err := readStat(pid)
		if err != nil {
			t.Fatal(err)
		}
		if st.session == ours.session {
			t.Errorf("daemon shares our session %d", ours.session)
		}
		// A session leader, so StopGroup(pid) reaches its helpers.
		if st.session != pid || st.pgrp != pid {
			t.Errorf("daemon session %d, group %d; want both %d", st.session, st.pgrp, pid)
		}
	})

	t.Run("environment", func(t *testing.T) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{DefaultPath}, parseCmdline(data)); diff != "" {
			t.Errorf("daemon environment mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("descriptors and directory", func(t *testing.T) {
		for path, want := range map[string]string{
			"fd/0": "/dev/null",
			"fd/1": "/dev/null",
			"fd/2": "/dev/null",
			"cwd":  "/",
		} {
			got, err := os.Readlink(fmt.Sprintf("/proc/%d/%s", pid, path))
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("/proc/%d/%s -> %q, want %q", pid, path, got, want)
			}
		}
	})

	t.Run("status", func(t *testing.T) {
		state, got, err := Status(pidfile, MatchExecutable("/bin/sleep"))
		if state != Running || got != pid || err != nil {
			t.Errorf("Status() = %v, %d, %v; want running, %d, nil", state, got, err, pid)
		}
	})
}

func TestStartDaemonOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logfile := filepath.Join(dir, "daemon.log")
	writeFile(t, logfile, "earlier run\n")
	script := `echo "out $FOO $(pwd)"; echo err >&2; read line; echo "stdin:$line"`
	pid := startDaemon(t, Daemon{
		Path:    "/bin/sh",
		Args:    []string{"-c", script},
		Env:     []string{"FOO=bar"},
		Dir:     dir,
		LogFile: logfile,
	})
	waitFor(t, "short-lived daemon to exit", func() bool { return !mustAlive(t, pid) })
	data, err := os.ReadFile(logfile)
	if err != nil {
		t.Fatal(err)
	}
	// "read" sees end of file on /dev/null, so the line is empty.
	want := "earlier run\nout bar " + dir + "\nerr\nstdin:\n"
	if diff := cmp.Diff(want, string(data)); diff != "" {
		t.Errorf("log file mismatch (-want +got):\n%s", diff)
	}
}

func TestStartDaemonCredential(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("switching user needs root; run the tests as root to cover Credential")
	}
	const nobody = 65534
	pid := startDaemon(t, Daemon{
		Path:       "/bin/sleep",
		Args:       []string{"30"},
		Credential: &syscall.Credential{Uid: nobody, Gid: nobody},
	})
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		key, value, _ := strings.Cut(line, ":")
		if key != "Uid" && key != "Gid" && key != "Groups" {
			continue
		}
		fields := strings.Fields(value)
		want := slices.Repeat([]string{strconv.Itoa(nobody)}, 4)
		if key == "Groups" {
			want = []string{}
		}
		if diff := cmp.Diff(want, fields); diff != "" {
			t.Errorf("%s mismatch (-want +got):\n%s", key, diff)
		}
	}
}

func TestStartDaemonErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	writeFile(t, notExec, "#!/bin/sh\n")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name   string
		ctx    context.Context
		spec   Daemon
		wantIs error // nil: any error
	}{
		{name: "missing binary", spec: Daemon{Path: filepath.Join(dir, "missing")}, wantIs: fs.ErrNotExist},
		{name: "missing directory", spec: Daemon{Path: "/bin/sleep", Dir: filepath.Join(dir, "missing")}, wantIs: fs.ErrNotExist},
		{name: "not executable", spec: Daemon{Path: notExec}, wantIs: fs.ErrPermission},
		{name: "relative path", spec: Daemon{Path: "sleep", Args: []string{"30"}}},
		{name: "log file in missing directory", spec: Daemon{Path: "/bin/sleep", LogFile: filepath.Join(dir, "missing", "log")}, wantIs: fs.ErrNotExist},
		{name: "context done", ctx: canceled, spec: Daemon{Path: "/bin/sleep", Args: []string{"30"}}, wantIs: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			pid, err := StartDaemon(ctx, tt.spec)
			if err == nil {
				killAndReap(pid)
				t.Fatalf("StartDaemon() = %d, nil; want an error", pid)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("StartDaemon() error = %v, want errors.Is %v", err, tt.wantIs)
			}
			if pid != 0 {
				t.Errorf("StartDaemon() pid = %d on error, want 0", pid)
			}
		})
	}
}

// TestStartDaemonPIDFileFailure checks that a daemon whose pid cannot be
// recorded does not keep running untracked.
func TestStartDaemonPIDFileFailure(t *testing.T) {
	t.Parallel()
	// Running sleep through a link with a name of its own gives the
	// daemon a comm no other process has, and comm survives in
	// /proc/<pid>/stat after death, unlike the cmdline.
	dir := t.TempDir()
	const comm = "sleep-pidfail"
	exe := filepath.Join(dir, comm)
	if err := os.Symlink("/bin/sleep", exe); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(dir, "missing", "d.pid")
	pid, err := StartDaemon(context.Background(), Daemon{Path: exe, Args: []string{"30"}, PIDFile: pidfile})
	if err == nil {
		killAndReap(pid)
		t.Fatal("StartDaemon() succeeded without a pid file")
	}
	child := findChild(t, comm)
	if child == 0 {
		t.Fatal("daemon not found among our children")
	}
	t.Cleanup(func() { killAndReap(child) })
	waitFor(t, "untracked daemon to be killed", func() bool { return !mustAlive(t, child) })
}

// findChild returns the pid of the test binary's child, zombie or not,
// whose comm is comm, or 0.
func findChild(t *testing.T, comm string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || !strings.Contains(string(data), "("+comm+")") {
			continue
		}
		if st, err := parseStat(data); err == nil && st.ppid == os.Getpid() {
			return pid
		}
	}
	return 0
}

// A symbolic link planted at the log file's path is not followed: root
// would append the daemon's output to whatever it points to.
func TestStartDaemonRefusesLinkedLogFile(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "daemon.log")
	if err := os.Symlink(victim, logFile); err != nil {
		t.Fatal(err)
	}
	pid, err := StartDaemon(context.Background(), Daemon{Path: "/bin/echo", Args: []string{"planted"}, LogFile: logFile})
	if err == nil {
		killAndReap(pid)
		t.Fatal("StartDaemon followed a symbolic link as its log file")
	}
	if data, _ := os.ReadFile(victim); string(data) != "keep\n" {
		t.Errorf("the link's target was written: %q", data)
	}
}
