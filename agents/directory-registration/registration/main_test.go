package registration

import (
	"os"
	"testing"

	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// TestMain lets the test binary serve as the agent for the runners of
// ocftest.NewSelfRunner (the interruption tests).
func TestMain(m *testing.M) {
	if code, ok := ocftest.ServeAgent(New()); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
