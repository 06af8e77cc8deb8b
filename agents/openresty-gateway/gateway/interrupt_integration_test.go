//go:build integration

package gateway

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// TestInterrupted kills the agent's start, stop and reload-agent as
// pacemaker-execd kills them at their timeout (SIGKILL to the agent's
// process group), at the points where they leave the most half done, and
// then runs what Pacemaker runs next (ocftest.Recover). One fixture, one
// Consul, for all of them; the killed actions run the test binary as the
// agent (see TestMain), the recovery runs in-process on the same state.
func TestInterrupted(t *testing.T) {
	f := newFixture(t, 90*24*time.Hour)
	r := f.runner(t)
	killed := ocftest.NewSelfRunner(t, ocftest.Config{Name: "openresty-gateway", Params: f.params, Env: f.env})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	file := func(name string) string { return filepath.Join(f.params["state_dir"], "private", name) }
	pid := func(t *testing.T, name string) int {
		t.Helper()
		p, err := process.ReadPIDFile(file(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return p
	}
	exited := func(p int) func() bool {
		return func() bool {
			alive, _ := process.Alive(p)
			return !alive
		}
	}
	interrupt := func(t *testing.T, action string, extra map[string]string, at func() bool) {
		t.Helper()
		ocftest.Interrupted(t, ctx, killed, ocftest.Interruption{Action: action, Extra: extra, At: at})
	}
	gone := func(t *testing.T, pids ...int) func() {
		return func() {
			for _, p := range pids {
				if alive, err := process.Alive(p); alive || err != nil {
					t.Errorf("process %d left by the interrupted action still runs after stop (%v)", p, err)
				}
			}
			for _, name := range []string{"master.pid", "companion.pid"} {
				if _, err := process.ReadPIDFile(file(name)); err == nil {
					t.Errorf("%s left after stop", name)
				}
			}
		}
	}
	serving := func(t *testing.T) {
		t.Helper()
		if code := f.get(t, "/orders/x", ""); code != 401 {
			t.Errorf("a request without a token after recovery = %d, want 401", code)
		}
	}

	t.Run("start, nginx launched, not ready", func(t *testing.T) {
		interrupt(t, ocf.ActionStart, nil, ocftest.Exists(file("master.pid")))
		// nginx runs without its companion: failed, which Pacemaker
		// answers with a stop.
		ocftest.Recover(t, r, []ocf.Code{ocf.GenericFailure}, gone(t, pid(t, "master.pid")))
		serving(t)
	})

	t.Run("stop, companion stopped, nginx not yet", func(t *testing.T) {
		master, comp := pid(t, "master.pid"), pid(t, "companion.pid")
		interrupt(t, ocf.ActionStop, nil, exited(comp))
		ocftest.Recover(t, r, []ocf.Code{ocf.GenericFailure, ocf.NotRunning}, gone(t, master, comp))
		serving(t)
	})

	t.Run("stop, waiting for nginx to end", func(t *testing.T) {
		master := pid(t, "master.pid")
		// Stopped, the master keeps the graceful stop's QUIT pending
		// (its workers end): the stop waits for it, and is killed then.
		if err := syscall.Kill(master, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		interrupt(t, ocf.ActionStop, nil, ocftest.SignalPending(master, syscall.SIGQUIT))
		// nginx ends on its own, after the agent.
		syscall.Kill(master, syscall.SIGCONT)
		ocftest.Recover(t, r, []ocf.Code{ocf.GenericFailure, ocf.NotRunning}, gone(t, master))
		serving(t)
	})

	t.Run("reload-agent, nginx reloaded, companion stopped", func(t *testing.T) {
		master, comp := pid(t, "master.pid"), pid(t, "companion.pid")
		interrupt(t, ocf.ActionReloadAgent, map[string]string{"OCF_RESKEY_workers": "2"}, exited(comp))
		ocftest.Recover(t, r, []ocf.Code{ocf.GenericFailure}, gone(t, master, comp))
		serving(t)
	})

	t.Run("start, companion launched, not ready", func(t *testing.T) {
		if res := r.Run(ocf.ActionStop, nil); res.Code != ocf.Success {
			t.Fatalf("stop: %v %q", res.Code, res.Reason)
		}
		interrupt(t, ocf.ActionStart, nil, ocftest.Exists(file("companion.pid")))
		ocftest.Recover(t, r, []ocf.Code{ocf.Success, ocf.GenericFailure}, gone(t, pid(t, "master.pid"), pid(t, "companion.pid")))
		serving(t)
	})
}
