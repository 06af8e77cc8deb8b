package haproxydynamic

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the watcher: the agent starts
// the watcher by executing its own binary (os.Executable) with "watch",
// which in a test is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == WatchCommand {
		os.Exit(Main())
	}
	os.Exit(m.Run())
}
