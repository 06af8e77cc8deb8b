//go:build integration

package testcluster

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/agents/consul/consulagent"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// TestConsulInterrupted kills the consul agent's start, stop and
// reload-agent as pacemaker-execd kills them at their timeout (SIGKILL to
// the agent's process group), each at the point where it leaves the most
// half done, and then runs what Pacemaker runs next (ocftest.Recover):
// start once Consul runs but before its HTTP API answers, stop once
// Consul caught its stop signal and shuts down, reload-agent once the new
// configuration is written, while consul validate checks it. The
// killed actions run the test binary as the agent (see TestMain); the
// recovery runs in-process on the same state directory.
func TestConsulInterrupted(t *testing.T) {
	params, _ := consulServer(t, "interrupted", 1, nil)
	state := t.TempDir()
	env := map[string]string{"OCF_RESKEY_CRM_meta_timeout": "60000", "HA_RSCTMP": state}
	r := ocftest.NewRunner(t, consulagent.New(), ocftest.Config{Name: "consul", Params: params, Env: env})
	killed := ocftest.NewSelfRunner(t, ocftest.Config{Name: "consul", Params: params, Env: env})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pidFile := filepath.Join(state, "consul-ocftest.pid")
	pid := func(t *testing.T) int {
		t.Helper()
		p, err := process.ReadPIDFile(pidFile)
		if err != nil {
			t.Fatalf("consul's pid file: %v", err)
		}
		return p
	}
	interrupt := func(t *testing.T, action string, extra map[string]string, at func() bool) {
		t.Helper()
		ocftest.Interrupted(t, ctx, killed, ocftest.Interruption{Action: action, Extra: extra, At: at})
	}
	gone := func(t *testing.T, p int) func() {
		return func() {
			if alive, err := process.Alive(p); alive || err != nil {
				t.Errorf("consul (pid %d) left by the interrupted action still runs after stop (%v)", p, err)
			}
			if _, err := os.Stat(pidFile); err == nil {
				t.Errorf("pid file %s left after stop", pidFile)
			}
		}
	}
	// logged is a point that comes when Consul's log gains text it did
	// not hold yet.
	logged := func(t *testing.T, text string) func() bool {
		t.Helper()
		before, _ := os.ReadFile(params["log_file"])
		n := bytes.Count(before, []byte(text))
		return func() bool {
			now, _ := os.ReadFile(params["log_file"])
			return bytes.Count(now, []byte(text)) > n
		}
	}

	t.Run("start, Consul launched, API not answering", func(t *testing.T) {
		interrupt(t, ocf.ActionStart, nil, ocftest.Exists(pidFile))
		p := pid(t)
		// Consul runs, its API perhaps not yet: running or failed,
		// either way followed by a stop.
		ocftest.Recover(t, r, []ocf.Code{ocf.Success, ocf.GenericFailure}, gone(t, p))
	})

	t.Run("stop, Consul shutting down", func(t *testing.T) {
		p := pid(t)
		interrupt(t, ocf.ActionStop, nil, logged(t, "Caught"))
		ocftest.Recover(t, r, []ocf.Code{ocf.Success, ocf.GenericFailure, ocf.NotRunning}, gone(t, p))
	})

	t.Run("reload-agent, new configuration under validation", func(t *testing.T) {
		p := pid(t)
		conf := filepath.Join(state, "consul-ocftest.json")
		tmp := conf + ".new.json"
		// Killed while consul validate checks the new configuration,
		// a helper the agent waits for.
		interrupt(t, ocf.ActionReloadAgent, map[string]string{"OCF_RESKEY_log_level": "debug"}, func() bool {
			return len(processesNaming(tmp)) > 0
		})
		// The helper dies with its agent.
		for deadline := time.Now().Add(5 * time.Second); len(processesNaming(tmp)) > 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("consul validate %v still runs 5 s after its agent was killed", processesNaming(tmp))
			}
		}
		// Consul runs on, with the old configuration: running.
		ocftest.Recover(t, r, []ocf.Code{ocf.Success}, gone(t, p))
		if _, err := os.Stat(tmp); err == nil {
			t.Errorf("the killed reload's configuration %s left after the next start", tmp)
		}
	})
}

// processesNaming lists the processes with text in their command line.
func processesNaming(text string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(text)) {
			if alive, _ := process.Alive(pid); alive {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
