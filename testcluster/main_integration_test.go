//go:build integration

package testcluster

import (
	"os"
	"testing"

	"github.com/ha-framework/ha-framework/agents/consul/consulagent"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/testcluster/nofork"
)

// TestMain lets the test binary run an agent under testcluster/nofork's
// filter when it re-executes itself for that, and serve as the consul
// agent for the runners of ocftest.NewSelfRunner (the interruption
// tests).
func TestMain(m *testing.M) {
	nofork.Main()
	if code, ok := ocftest.ServeAgent(consulagent.New()); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
