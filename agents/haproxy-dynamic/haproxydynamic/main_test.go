package haproxydynamic

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// TestMain lets the test binary serve as the watcher: the agent starts
// the watcher by executing its own binary (os.Executable) with "watch",
// which in a test is this binary. It also serves as the agent itself for
// the runners of ocftest.NewSelfRunner (the interruption tests).
//
// A benchmark profiles that watcher by creating profileTrigger beside the
// watcher's configuration: the watcher then writes its CPU profile to
// watcher.cpu.pprof and, when it stops, its heap profile to
// watcher.heap.pprof and a summary of its memory to watcher.memstats.txt,
// in the same folder.
func TestMain(m *testing.M) {
	if code, ok := ocftest.ServeAgent(New()); ok {
		os.Exit(code)
	}
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
	// Where the resident memory goes, which the heap profile does not
	// say: goroutine stacks, heap kept but unused, the runtime's own.
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	mb := func(n uint64) float64 { return float64(n) / (1 << 20) }
	os.WriteFile(filepath.Join(dir, "watcher.memstats.txt"), fmt.Appendf(nil,
		"goroutines %d; MB: heap in use %.1f, heap idle not released %.1f, stacks %.1f, other runtime %.1f, total from the OS %.1f\n",
		runtime.NumGoroutine(), mb(m.HeapInuse), mb(m.HeapIdle-m.HeapReleased), mb(m.StackSys),
		mb(m.MSpanSys+m.MCacheSys+m.BuckHashSys+m.GCSys+m.OtherSys), mb(m.Sys)), 0o644)
	return code
}
