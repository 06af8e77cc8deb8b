package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// startDaemon starts spec with StartDaemon and registers a cleanup that
// kills the daemon's whole process group and reaps it, since the test
// binary is its parent and nothing else would.
func startDaemon(t *testing.T, spec Daemon) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pid, err := StartDaemon(ctx, spec)
	if err != nil {
		t.Fatalf("StartDaemon(%+v): %v", spec, err)
	}
	t.Cleanup(func() { killAndReap(pid) })
	return pid
}

// killAndReap SIGKILLs the process group pid and collects pid's exit
// status, so tests leave neither processes nor zombies behind.
func killAndReap(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if !errors.Is(err, syscall.EINTR) {
			return
		}
	}
}

// startSleep starts /bin/sleep 30 as a daemon.
func startSleep(t *testing.T) int {
	t.Helper()
	return startDaemon(t, Daemon{Path: "/bin/sleep", Args: []string{"30"}})
}

// startStubborn starts a shell that ignores SIGTERM, and returns once the
// trap is in place, so that a test's SIGTERM cannot arrive first and
// end it by accident. The returned pid file path holds the pid of a
// sleep 30 the shell forked into its process group (it ignores
// SIGTERM too, as ignored signals survive exec).
func startStubborn(t *testing.T) (pid int, childPIDFile string) {
	t.Helper()
	dir := t.TempDir()
	childPIDFile = filepath.Join(dir, "child.pid")
	ready := filepath.Join(dir, "ready")
	script := `trap "" TERM; /bin/sleep 30 & echo $! > "$1"; : > "$2"; while :; do /bin/sleep 0.05; done`
	pid = startDaemon(t, Daemon{Path: "/bin/sh", Args: []string{"-c", script, "sh", childPIDFile, ready}})
	waitFor(t, "shell ready", func() bool {
		_, err := os.Stat(ready)
		return err == nil
	})
	child, err := ReadPIDFile(childPIDFile)
	if err != nil {
		t.Fatal(err)
	}
	// The sleep is a grandchild: once its shell dies, init reaps it.
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	return pid, childPIDFile
}

// waitFor polls cond until it holds, failing the test after a second.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mustAlive is Alive for tests.
func mustAlive(t *testing.T, pid int) bool {
	t.Helper()
	alive, err := Alive(pid)
	if err != nil {
		t.Fatalf("Alive(%d): %v", pid, err)
	}
	return alive
}

// deadPID returns the pid of a process that has exited and been reaped.
// The kernel hands out pids in increasing order, so it is not reused
// within a test.
func deadPID(t *testing.T) int {
	t.Helper()
	pid := startSleep(t)
	killAndReap(pid)
	return pid
}

// zombiePID returns the pid of a process that has exited but that the
// test binary, its parent, has not reaped yet.
func zombiePID(t *testing.T) int {
	t.Helper()
	pid := startSleep(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fmt.Sprintf("process %d to become a zombie", pid), func() bool {
		st, err := readStat(pid)
		return err == nil && st.state == 'Z'
	})
	return pid
}

// writeFile writes a test fixture.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
