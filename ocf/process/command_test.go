package process

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunCleanEnvironment(t *testing.T) {
	t.Setenv("OCF_RESKEY_secret", "hunter2")
	out, err := Run(context.Background(), "env")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(out))
	want := []string{DefaultPath, "LC_ALL=C"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("environment of the command = %q, want %q", got, want)
	}
}

func TestRunExitError(t *testing.T) {
	_, err := Run(context.Background(), "/bin/sh", "-c", "echo; echo '  bad thing  ' >&2; echo more >&2; exit 3")
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want an *ExitError", err)
	}
	if ee.Status != 3 || FirstLine(ee.Stderr) != "bad thing" {
		t.Errorf("status %d, first line %q; want 3, %q", ee.Status, FirstLine(ee.Stderr), "bad thing")
	}
	if !strings.HasSuffix(err.Error(), ": exit status 3: bad thing") {
		t.Errorf("message %q does not end with the status and the first line", err)
	}
}

func TestRunNotFound(t *testing.T) {
	_, err := Run(context.Background(), "no-such-command-here")
	if !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("err = %v, want exec.ErrNotFound", err)
	}
	// The agent's PATH is not consulted.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "planted"), []byte("#!/bin/sh\necho planted\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if _, err := Run(context.Background(), "planted"); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("a command found only in the agent's PATH ran: err = %v", err)
	}
}

// A command that forks a child which keeps the output open must not hold
// Run past its context: the whole group is killed.
func TestRunKillsGroupAtDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := Run(ctx, "/bin/sh", "-c", "sleep 30 & sleep 30")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("Run returned %v after its deadline", took)
	}
}

// Pacemaker kills an agent that outlives its timeout with SIGKILL to the
// agent's process group. A helper command runs in a group of its own (so
// that Run can kill all of it at its deadline), which that kill does not
// reach: the helper must die with the agent all the same, or a hung one
// stays forever, one more at every timeout.
func TestRunHelperDiesWithKilledAgent(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "helper.pid")
	agent := exec.Command(self)
	agent.Env = []string{"PROCESS_TEST_RUN_HELPER=" + pidFile}
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	var helper int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if pid, err := ReadPIDFile(pidFile); err == nil {
			helper = pid
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(-agent.Process.Pid, syscall.SIGKILL)
			agent.Wait()
			t.Fatal("the helper did not start within 10 s")
		}
	}
	t.Cleanup(func() { syscall.Kill(helper, syscall.SIGKILL) })
	if err := syscall.Kill(-agent.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	agent.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if alive, err := Alive(helper); err == nil && !alive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the helper (pid %d) still runs 5 s after its agent was killed", helper)
		}
	}
}
