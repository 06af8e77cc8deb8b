package haproxydynamic

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
)

// TestMain lets the test binary serve as the watcher: the agent starts
// the watcher by executing its own binary (os.Executable) with "watch",
// which in a test is this binary.
//
// A benchmark profiles that watcher by creating profileTrigger beside the
// watcher's configuration: the watcher then writes its CPU profile to
// watcher.cpu.pprof and, when it stops, its heap profile to
// watcher.heap.pprof, in the same folder.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == WatchCommand {
		os.Exit(profiled(filepath.Dir(os.Args[2]), Main))
	}
	os.Exit(m.Run())
}

const profileTrigger = "profile-watcher"

func profiled(dir string, run func() int) int {
	if _, err := os.Stat(filepath.Join(dir, profileTrigger)); err != nil {
		return run()
	}
	cpu, err := os.Create(filepath.Join(dir, "watcher.cpu.pprof"))
	if err != nil {
		return run()
	}
	defer cpu.Close()
	if pprof.StartCPUProfile(cpu) == nil {
		defer pprof.StopCPUProfile()
	}
	code := run()
	if heap, err := os.Create(filepath.Join(dir, "watcher.heap.pprof")); err == nil {
		pprof.Lookup("heap").WriteTo(heap, 0)
		heap.Close()
	}
	return code
}
