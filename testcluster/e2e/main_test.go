//go:build e2e

// Package e2e holds the end-to-end scenarios of the test cluster: real
// 3-node Corosync + Pacemaker clusters driven through testcluster/harness,
// on the backend HAFW_E2E_BACKEND names (docker, the default and what CI
// runs, or vagrant). Run them with testcluster/dockercluster/run-e2e.sh or
// testcluster/vagrantcluster/run-e2e.sh, which prepare the backend first.
package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/dockercluster"
	"github.com/ha-framework/ha-framework/testcluster/harness"
	"github.com/ha-framework/ha-framework/testcluster/vagrantcluster"
)

// up creates a cluster on the backend of HAFW_E2E_BACKEND and waits until
// it is ready.
func up(t *testing.T, opts *harness.Options) *harness.Cluster {
	t.Helper()
	var b harness.Backend
	switch kind := harness.EnvOr("HAFW_E2E_BACKEND", "docker"); kind {
	case "docker":
		b = dockercluster.New(os.Getenv("HAFW_NODE_IMAGE"))
	case "vagrant":
		b = vagrantcluster.New(vagrantcluster.Options{})
		// VMs under software emulation: provisioning already started the
		// cluster, but its first election and probes are slower.
		o := harness.Options{}
		if opts != nil {
			o = *opts
		}
		if o.ReadyTimeout == 0 {
			o.ReadyTimeout = 5 * time.Minute
		}
		opts = &o
	default:
		t.Fatalf("HAFW_E2E_BACKEND=%q: want docker or vagrant", kind)
	}
	return harness.Up(t, b, opts)
}
