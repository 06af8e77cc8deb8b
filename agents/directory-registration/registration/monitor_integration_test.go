//go:build integration

package registration

import (
	"slices"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// TestRecurringMonitorRequests: Pacemaker runs the recurring monitor every
// few seconds for every registration, so it asks the agent for its
// services and checks once and refreshes the TTL check, no more; and the
// refresh shows in its verdict: a TTL check that went critical (Pacemaker
// stopped monitoring for a while) passes again, and the monitor succeeds.
func TestRecurringMonitorRequests(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	proxy := consultest.NewCountingProxy(t, d.addr)
	r := runner(t, "count-reg", map[string]string{"consul_address": proxy.Addr, "service_name": "count", "check_ttl": "30s"})
	must(t, r, "start", nil, ocf.Success)
	// The start sets the TTL check passing once: the monitor the SDK
	// runs after it to confirm the start only looks (it repeated the
	// update a few milliseconds later).
	if n := count(proxy.Requests(), "PUT /v1/agent/check/update/service:count-node1"); n != 1 {
		t.Errorf("start sent the TTL update %d times, want once: %v", n, proxy.Requests())
	}

	if err := d.api.Agent().UpdateTTL("service:count-node1", "expired", api.HealthCritical); err != nil {
		t.Fatal(err)
	}
	proxy.Reset()
	must(t, r, "monitor", recurring, ocf.Success)
	want := []string{"GET /v1/agent/services", "GET /v1/agent/checks", "PUT /v1/agent/check/update/service:count-node1"}
	if got := proxy.Requests(); !slices.Equal(got, want) {
		t.Errorf("a recurring monitor sent %v to Consul, want %v", got, want)
	}
	// A probe only looks; the deep monitor compares with what the same
	// two reads return.
	for _, step := range []struct {
		name  string
		extra map[string]string
		want  []string
	}{
		{"probe", probe, want[:2]},
		{"depth-10 monitor", deep, want},
	} {
		proxy.Reset()
		must(t, r, "monitor", step.extra, ocf.Success)
		if got := proxy.Requests(); !slices.Equal(got, step.want) {
			t.Errorf("a %s sent %v to Consul, want %v", step.name, got, step.want)
		}
	}
	checks, err := d.api.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	if c := checks["service:count-node1"]; c == nil || c.Status != api.HealthPassing {
		t.Errorf("TTL check after the monitor: %+v, want passing", c)
	}
	// The default stop drains: maintenance first, the deregistration
	// after drain_period.
	proxy.Reset()
	must(t, r, "stop", map[string]string{"OCF_RESKEY_drain_period": "1ms"}, ocf.Success)
	maint := "PUT /v1/agent/service/maintenance/count-node1"
	if got := proxy.Requests(); count(got, maint) != 1 || !slices.Contains(got, "PUT /v1/agent/service/deregister/count-node1") {
		t.Errorf("a stop with drain_period=1ms sent %v to Consul, want %s and the deregistration", got, maint)
	}
	// Without a drain, a stop deregisters at once: no maintenance (the
	// two reads after it are the SDK's check that the stop took).
	must(t, r, "start", nil, ocf.Success)
	proxy.Reset()
	must(t, r, "stop", map[string]string{"OCF_RESKEY_drain_period": "0"}, ocf.Success)
	want = []string{"GET /v1/agent/services", "GET /v1/agent/checks", "PUT /v1/agent/service/deregister/count-node1",
		"GET /v1/agent/services", "GET /v1/agent/checks"}
	if got := proxy.Requests(); !slices.Equal(got, want) {
		t.Errorf("a stop with drain_period=0 sent %v to Consul, want %v", got, want)
	}
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}
