//go:build integration

package registration

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// The agent's start and stop killed as pacemaker-execd kills them at
// their timeout (SIGKILL to the agent's process group): start once the
// instance is registered but before its checks pass (wait_for=passing),
// stop in the middle of its drain (the instance in maintenance). Each is
// followed by what Pacemaker runs next (ocftest.Recover), and an
// interrupted stop also by a start without a stop in between, as when
// the resource comes back to the node. reload-agent is one registration
// call, too short to kill partway.
func TestInterrupted(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	checkPort := freePorts(t, 1)[0]
	checkAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(checkPort))
	params := map[string]string{"consul_address": d.addr, "service_name": "intr", "service_port": "8443",
		"check_tcp": checkAddr, "check_interval": "1s", "wait_for": "passing", "drain_period": "5s"}
	env := map[string]string{"OCF_RESOURCE_INSTANCE": "intr-reg", "OCF_RESKEY_CRM_meta_on_node": "node1"}
	r := runner(t, "intr-reg", params)
	env["HA_RSCTMP"] = r.StateDir()
	killed := ocftest.NewSelfRunner(t, ocftest.Config{Name: "directory-registration", Params: params, Env: env})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const id = "intr-node1"
	cleanup := t.Cleanup

	registered := func() bool {
		services, err := d.api.Agent().Services()
		return err == nil && services[id] != nil
	}
	inMaintenance := func() bool {
		checks, err := d.api.Agent().Checks()
		return err == nil && checks[api.ServiceMaintPrefix+id] != nil
	}
	interrupt := func(t *testing.T, action string, at func() bool) {
		t.Helper()
		if res, err := killed.Interrupt(ctx, ocftest.Interruption{Action: action, At: at}); err != nil {
			t.Fatalf("%s not interrupted: %v\n%s", action, err, res.Stderr)
		}
	}
	deregistered := func(t *testing.T) func() {
		return func() {
			if registered() {
				t.Errorf("%s is still registered after stop", id)
			}
			if inMaintenance() {
				t.Errorf("%s's maintenance check is left after stop", id)
			}
		}
	}
	serving := func(t *testing.T) {
		t.Helper()
		if inMaintenance() {
			t.Errorf("%s is still in maintenance after start", id)
		}
		if e := catalogEntry(t, d, "intr", id); e == nil || e.Checks.AggregatedStatus() != api.HealthPassing {
			t.Errorf("%s is not passing in the catalog after start: %+v", id, e)
		}
	}

	t.Run("start, registered, checks not passing", func(t *testing.T) {
		interrupt(t, ocf.ActionStart, registered)
		// The service comes up: its check can pass now.
		l, err := net.Listen("tcp", checkAddr)
		if err != nil {
			t.Fatal(err)
		}
		// Open for the later subtests too.
		cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		// Registered, its check critical: running, degraded.
		ocftest.Recover(t, r, []ocf.Code{ocf.Degraded}, deregistered(t))
		serving(t)
	})

	t.Run("stop, draining", func(t *testing.T) {
		interrupt(t, ocf.ActionStop, inMaintenance)
		// Still registered, in the maintenance of its unfinished
		// stop: failed, so that Pacemaker stops and starts it rather
		// than leave it out of discovery.
		ocftest.Recover(t, r, []ocf.Code{ocf.GenericFailure}, deregistered(t))
		serving(t)
	})

	t.Run("stop, draining, then start", func(t *testing.T) {
		interrupt(t, ocf.ActionStop, inMaintenance)
		must(t, r, ocf.ActionMonitor, recurring, ocf.GenericFailure)
		must(t, r, ocf.ActionStart, nil, ocf.Success)
		must(t, r, ocf.ActionMonitor, recurring, ocf.Success)
		serving(t)
	})
}
