//go:build integration

package dockerservice

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
)

// TestChurn runs several containers of one node through their whole life
// at the same time on one engine, as a node whose resources Pacemaker
// moves back and forth: each churning resource is probed, started,
// monitored at both depths, stopped and probed again, several times,
// while a steady resource's recurring monitor runs all along. Every
// action must give its usual answer, the steady container must never
// look failed, and at the end only the steady container may be left.
func TestChurn(t *testing.T) { forEachEngine(t, testChurn) }

func testChurn(t *testing.T, kind string) {
	const (
		churners = 4
		cycles   = 3
		// Bounds the steady monitor's loop in count; the churners end
		// it sooner.
		steadyChecks = 2000
	)
	d := sharedEngine(t, kind)
	steady := newNamedService(t, d, "hafw-churn-steady-"+kind, imagePlain, nil)
	steady.must(t, "start", nil, ocf.Success)
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
			time.Sleep(50 * time.Millisecond)
		}
	}()

	deep := map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000", "OCF_CHECK_LEVEL": "10"}
	var churning []*service
	for i := range churners {
		churning = append(churning, newNamedService(t, d, "hafw-churn-"+strconv.Itoa(i)+"-"+kind, imagePlain, nil))
	}
	var wg sync.WaitGroup
	for _, s := range churning {
		t.Cleanup(func() { s.Run("stop", nil) })
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
				for _, st := range steps {
					if got := s.Run(st.action, st.extra); got.Code != st.want {
						fail("%s cycle %d: %s (depth %q, interval %q) = %v %q, want %v", s.name, c, st.action,
							st.extra["OCF_CHECK_LEVEL"], st.extra["OCF_RESKEY_CRM_meta_interval"], got.Code, got.Reason, st.want)
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
		t.Error("the steady resource was never monitored during the churn")
	}
	t.Logf("%d containers × %d cycles churned beside a steady one, monitored %d times meanwhile", churners, cycles, checks)
	for _, s := range churning {
		if code, err := s.get("/health"); err == nil {
			t.Errorf("%s still answers (%d) after its last stop", s.name, code)
		}
	}
	if code, err := steady.get("/health"); err != nil || code != 200 {
		t.Errorf("the steady container does not serve after the churn: %v %v", code, err)
	}
	steady.must(t, "monitor", deep, ocf.Success)
}
