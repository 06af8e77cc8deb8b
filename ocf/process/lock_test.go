package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// lockHelperEnv, when set in the environment, makes TestLockHelperProcess
// act as a second agent holding the lock named by its value.
const lockHelperEnv = "PROCESS_TEST_LOCK_HELPER"

// generous bounds waits that end on an event, so that a loaded machine
// (go test -race beside other builds) slows the test without failing
// it. No assertion depends on it.
const generous = 30 * time.Second

func TestLockExcludesGoroutines(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rsc.lock")
	unlock, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}

	// A second holder gives up at its deadline, not before, while the
	// first holds the lock.
	// begin is taken before the deadline is set, so that a pause between
	// the two (a loaded machine) cannot make the wait look short.
	const wait = 150 * time.Millisecond
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := Lock(ctx, path); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrLockHeld) {
		t.Fatalf("Lock() on a held lock = %v, want ErrLockHeld and DeadlineExceeded", err)
	}
	if took := time.Since(begin); took < wait {
		t.Errorf("Lock() gave up after %v, before its %v deadline", took, wait)
	}

	// A waiter started while the lock is held gets it once, and only
	// once, it is released.
	started := make(chan struct{})
	acquired := make(chan error, 1)
	var unlock2 func() error
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), generous)
		defer cancel()
		close(started)
		var err error
		unlock2, err = Lock(ctx, path)
		acquired <- err
	}()
	<-started
	// Let the waiter poll at least once while the lock is held; the
	// check below holds however long this takes.
	time.Sleep(2 * lockPoll)
	select {
	case err := <-acquired:
		t.Fatalf("waiter returned (%v) while the lock was held", err)
	default:
	}
	if err := unlock(); err != nil {
		t.Fatalf("unlock() = %v", err)
	}
	if err := <-acquired; err != nil {
		t.Fatalf("Lock() after release = %v", err)
	}
	if err := unlock2(); err != nil {
		t.Errorf("unlock() = %v", err)
	}
	// unlock is safe to call twice, e.g. deferred and explicit.
	if err := unlock2(); err != nil {
		t.Errorf("second unlock() = %v, want the first result (nil)", err)
	}
}

func TestLockExcludesProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rsc.lock")
	// Another agent process, holding the lock until its stdin closes.
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := bufio.NewReader(stdout)
	if line, err := lines.ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v; want \"locked\"", line, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock() held by another process = %v, want DeadlineExceeded", err)
	}

	// Once the helper says it released, the lock is ours.
	stdin.Close()
	if line, err := lines.ReadString('\n'); err != nil || line != "unlocked\n" {
		t.Fatalf("helper said %q, %v; want \"unlocked\"", line, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), generous)
	defer cancel()
	unlock, err := Lock(ctx, path)
	if err != nil {
		t.Fatalf("Lock() after the other process released = %v", err)
	}
	_ = unlock()
}

// TestLockHelperProcess is not a test: TestLockExcludesProcesses runs the
// test binary with lockHelperEnv set to make it a second lock holder.
func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv(lockHelperEnv)
	if path == "" {
		t.Skip("helper process for TestLockExcludesProcesses only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	unlock, err := Lock(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("unlocked")
}

// TestLockNotInherited checks that a daemon started while the lock is held
// does not keep it: otherwise every later action of the resource would
// wait for the daemon to exit.
func TestLockNotInherited(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rsc.lock")
	unlock, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	pid := startSleep(t)
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if target == path {
			t.Errorf("daemon inherited the lock file as fd %s", fd.Name())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	unlock, err = Lock(ctx, path)
	if err != nil {
		t.Fatalf("Lock() while the daemon runs = %v, want the lock", err)
	}
	_ = unlock()
}

func TestLockFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "rsc.lock")
	unlock, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("lock file removed on unlock: %v", err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("lock file mode = %v, want 0600", got)
	}

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Lock(canceled, path); !errors.Is(err, context.Canceled) || errors.Is(err, ErrLockHeld) {
		t.Errorf("Lock() with a done ctx = %v, want Canceled without ErrLockHeld", err)
	}
	if _, err := Lock(context.Background(), filepath.Join(dir, "missing", "rsc.lock")); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrLockHeld) {
		t.Errorf("Lock() in a missing directory = %v, want ErrNotExist without ErrLockHeld", err)
	}
}

// A symbolic link planted at the lock's path is not followed.
func TestLockRefusesLink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	path := filepath.Join(dir, "r.lock")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if unlock, err := Lock(context.Background(), path); err == nil {
		unlock()
		t.Fatal("Lock followed a symbolic link")
	}
	if _, err := os.Stat(victim); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the link's target was created: %v", err)
	}
}
