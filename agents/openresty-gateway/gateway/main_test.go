package gateway

import (
	"os"
	"testing"

	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// TestMain lets the test binary serve as the companion: the agent starts
// it by executing its own binary (os.Executable) with "watch", which in a
// test is this binary. It also serves as the agent itself for the
// runners of ocftest.NewSelfRunner (the interruption tests).
func TestMain(m *testing.M) {
	if code, ok := ocftest.ServeAgent(New()); ok {
		os.Exit(code)
	}
	if len(os.Args) == 3 && os.Args[1] == WatchCommand {
		os.Exit(Main())
	}
	os.Exit(m.Run())
}
