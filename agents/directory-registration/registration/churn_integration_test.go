//go:build integration

package registration

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
)

// TestChurn runs many registrations of one node through their whole life
// at the same time, in-process against one Consul agent, as a node whose
// resources Pacemaker moves back and forth: each churning instance is
// probed, started, monitored at both depths, stopped and probed again,
// several times, while a steady instance's recurring monitor runs all
// along. Every action must give its usual answer, the steady instance
// must never look failed, and at the end Consul must hold the steady
// instance's registration and none of the others'. Under the race
// detector it also shows the agent shares no state between instances.
func TestChurn(t *testing.T) {
	t.Parallel()
	const (
		churners = 8
		cycles   = 10
		// Bounds the steady monitor's loop in count; the churners end
		// it sooner.
		steadyChecks = 2000
	)
	d := startConsul(t, "")
	check := listener(t)
	params := func(name string) map[string]string {
		return map[string]string{"consul_address": d.addr, "service_name": name, "service_port": "8080",
			"check_tcp": check, "check_interval": "1s", "wait_for": "passing", "drain_period": "0"}
	}
	steady := runner(t, "steady-reg", params("steady"))
	must(t, steady, "start", nil, ocf.Success)
	t.Cleanup(func() { steady.Run("stop", nil) })

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
	steadyDone := make(chan int)
	go func() {
		n := 0
		defer func() { steadyDone <- n }()
		for ; n < steadyChecks; n++ {
			select {
			case <-done:
				return
			default:
			}
			if got := steady.Run("monitor", recurring); got.Code != ocf.Success {
				fail("steady monitor %d during the churn = %v %q", n, got.Code, got.Reason)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	var wg sync.WaitGroup
	for i := range churners {
		name := "churn" + strconv.Itoa(i)
		r := runner(t, name+"-reg", params(name))
		t.Cleanup(func() { r.Run("stop", nil) })
		wg.Add(1)
		go func() {
			defer wg.Done()
			steps := []struct {
				action string
				extra  map[string]string
				want   ocf.Code
			}{
				{"monitor", probe, ocf.NotRunning},
				{"start", nil, ocf.Success},
				{"monitor", recurring, ocf.Success},
				{"monitor", deep, ocf.Success},
				{"stop", nil, ocf.Success},
				{"monitor", probe, ocf.NotRunning},
			}
			for c := range cycles {
				for _, s := range steps {
					if got := r.Run(s.action, s.extra); got.Code != s.want {
						fail("%s cycle %d: %s (interval %q) = %v %q, want %v", name, c, s.action,
							s.extra["OCF_RESKEY_CRM_meta_interval"], got.Code, got.Reason, s.want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	checks := <-steadyDone
	for _, f := range failures {
		t.Error(f)
	}
	if checks == 0 {
		t.Error("the steady instance was never monitored during the churn")
	}
	t.Logf("%d instances × %d cycles churned beside a steady one, monitored %d times meanwhile", churners, cycles, checks)

	services, err := d.api.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for id, s := range services {
		if s.Meta["ha_resource"] != "" {
			ours = append(ours, id+" ("+s.Meta["ha_resource"]+")")
		}
	}
	if len(ours) != 1 || services["steady-node1"] == nil {
		t.Errorf("registrations left in Consul after the churn: %v, want only steady-node1", ours)
	}
	must(t, steady, "monitor", deep, ocf.Success)
}
