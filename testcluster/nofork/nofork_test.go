package nofork

import (
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

func run(t *testing.T, path string, args ...string) *os.ProcessState {
	t.Helper()
	cmd, err := Command(path, args...)
	if err != nil {
		t.Skip(err)
	}
	cmd.Env = append(cmd.Env, "HAFW_NOFORK_HELPER=1")
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil {
		t.Fatalf("%s: %v\n%s", path, err, out)
	}
	return cmd.ProcessState
}

func TestAllowsAProgramThatForksNothing(t *testing.T) {
	if ps := run(t, "/bin/true"); !ps.Success() || Killed(ps) {
		t.Errorf("/bin/true under the filter: %v, want exit 0", ps)
	}
}

// A Go program makes threads with clone(CLONE_THREAD): allowed.
func TestAllowsThreads(t *testing.T) {
	self, _ := os.Executable()
	if ps := run(t, self, "-test.run=^TestHelperThreads$"); !ps.Success() || Killed(ps) {
		t.Errorf("a Go program making threads under the filter: %v, want exit 0", ps)
	}
}

func TestKillsAForkingProgram(t *testing.T) {
	for _, c := range [][]string{
		{"/bin/sh", "-c", "/bin/true; exit 0"},
		// The Go way: os/exec.
		{"/proc/self/exe", "-test.run=^TestHelperExec$"},
	} {
		path := c[0]
		if path == "/proc/self/exe" {
			path, _ = os.Executable()
		}
		if ps := run(t, path, c[1:]...); !Killed(ps) {
			t.Errorf("%v under the filter: %v, want killed by SIGSYS", c, ps)
		}
	}
}

// TestHelperThreads keeps several threads busy at once (run by
// TestAllowsThreads).
func TestHelperThreads(t *testing.T) {
	if os.Getenv("HAFW_NOFORK_HELPER") != "1" {
		t.Skip("helper")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			time.Sleep(50 * time.Millisecond)
		}()
	}
	wg.Wait()
}

// TestHelperExec starts a child with os/exec (run by
// TestKillsAForkingProgram).
func TestHelperExec(t *testing.T) {
	if os.Getenv("HAFW_NOFORK_HELPER") != "1" {
		t.Skip("helper")
	}
	_ = startTrue()
}
