//go:build integration

package testcluster

import (
	"os"
	"testing"

	"github.com/ha-framework/ha-framework/testcluster/nofork"
)

// TestMain lets the test binary run an agent under testcluster/nofork's
// filter when it re-executes itself for that.
func TestMain(m *testing.M) {
	nofork.Main()
	os.Exit(m.Run())
}
