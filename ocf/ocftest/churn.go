package ocftest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
)

// churnSteadyChecks bounds the steady resource's monitor loop in count;
// the churning resources normally end it much sooner.
const churnSteadyChecks = 2000

// churnStep is one action of a churning resource's life and the codes it
// may return.
type churnStep struct {
	name   string
	action string
	extra  map[string]string
	want   []ocf.Code
}

var churnLife = []churnStep{
	{"probe", ocf.ActionMonitor, probe, []ocf.Code{ocf.NotRunning}},
	{"start", ocf.ActionStart, nil, []ocf.Code{ocf.Success}},
	{"monitor", ocf.ActionMonitor, recurring, []ocf.Code{ocf.Success}},
	{"deep monitor", ocf.ActionMonitor, map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000", "OCF_CHECK_LEVEL": "10"},
		[]ocf.Code{ocf.Success, ocf.Degraded}},
	{"stop", ocf.ActionStop, nil, []ocf.Code{ocf.Success}},
	{"probe after stop", ocf.ActionMonitor, probe, []ocf.Code{ocf.NotRunning}},
}

// Churn runs several resources of an agent through their whole life at
// the same time, as on a node whose resources Pacemaker moves back and
// forth, beside a steady one: each of churning is probed, started,
// monitored (recurring, then at depth 10), stopped and probed again,
// cycles times, all of them at once, while the recurring monitor of
// steady runs all along. It shows that instances share nothing they must
// not (files, locks, connections, state in the agent's process) and that
// one instance's transitions never make another look failed.
//
// steady must be started, and every runner of churning stopped, when
// Churn is called; each runner is a resource of its own (its own
// OCF_RESOURCE_INSTANCE, and whatever the agent's instances must not
// share: ports, names), and all of them share one state directory, as
// the resources of one node share HA_RSCTMP: give each the same
// HA_RSCTMP in Config.Env (NewRunner otherwise gives every runner a fresh
// one, where instances that collide in their state files never meet).
// Churn reports on t every action that returned another code than
// Conformance expects of it (a churning resource stops at its first) and
// every monitor of steady that did not succeed.
//
// It returns how many times steady was monitored meanwhile: 0, having run
// nothing, when two runners name the same instance or have different state
// directories (reported on t, saying which).
func Churn(t testing.TB, steady *Runner, churning []*Runner, cycles int) int {
	t.Helper()
	if err := churnSetup(steady, churning); err != nil {
		t.Errorf("ocftest.Churn: %v", err)
		return 0
	}
	var (
		mu       sync.Mutex
		failures []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	done := make(chan struct{})
	checked := make(chan int)
	go func() {
		n := 0
		defer func() { checked <- n }()
		for ; n < churnSteadyChecks; n++ {
			select {
			case <-done:
				return
			default:
			}
			if got := steady.Run(ocf.ActionMonitor, recurring); got.Code != ocf.Success {
				fail("steady resource %s: monitor %d during the churn = %v %q", steady.env["OCF_RESOURCE_INSTANCE"], n, got.Code, got.Reason)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for _, r := range churning {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range cycles {
				for _, s := range churnLife {
					if got := r.Run(s.action, s.extra); !slices.Contains(s.want, got.Code) {
						fail("%s, cycle %d: %s = %v %q, want %v", r.env["OCF_RESOURCE_INSTANCE"], c+1, s.name, got.Code, got.Reason, s.want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	n := <-checked
	for _, f := range failures {
		t.Errorf("%s", f)
	}
	if n == 0 {
		t.Errorf("the steady resource was never monitored during the churn")
	}
	return n
}

// churnSetup says what in the runners' configuration would keep Churn from
// showing instances that collide: two runners with one instance name are
// one resource, and runners with state directories of their own never
// meet in their state files.
func churnSetup(steady *Runner, churning []*Runner) error {
	seen := map[string]bool{}
	for _, r := range append([]*Runner{steady}, churning...) {
		name := r.env["OCF_RESOURCE_INSTANCE"]
		if seen[name] {
			return fmt.Errorf("two runners are resource %q; give each its own OCF_RESOURCE_INSTANCE in Config.Env", name)
		}
		seen[name] = true
		if r.StateDir() != steady.StateDir() {
			return fmt.Errorf("runner %q has state directory %s and steady runner %q has %s; give every runner the same HA_RSCTMP in Config.Env, as resources of one node share it",
				name, r.StateDir(), steady.env["OCF_RESOURCE_INSTANCE"], steady.StateDir())
		}
	}
	return nil
}
