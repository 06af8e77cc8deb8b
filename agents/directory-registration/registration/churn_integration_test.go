//go:build integration

package registration

import (
	"strconv"
	"testing"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// TestChurn runs many registrations of one node through their whole life
// at the same time (ocftest.Churn), in-process against one Consul agent,
// beside a steady one; at the end Consul must hold the steady
// instance's registration and none of the others'.
func TestChurn(t *testing.T) {
	t.Parallel()
	const churners, cycles = 8, 10
	d := startConsul(t, "")
	check := listener(t)
	params := func(name string) map[string]string {
		return map[string]string{"consul_address": d.addr, "service_name": name, "service_port": "8080",
			"check_tcp": check, "check_interval": "1s", "wait_for": "passing", "drain_period": "0"}
	}
	state := t.TempDir() // one HA_RSCTMP, as on one node
	steady := runnerIn(t, state, "steady-reg", params("steady"))
	must(t, steady, "start", nil, ocf.Success)
	t.Cleanup(func() { steady.Run("stop", nil) })
	var churning []*ocftest.Runner
	for i := range churners {
		name := "churn" + strconv.Itoa(i)
		r := runnerIn(t, state, name+"-reg", params(name))
		t.Cleanup(func() { r.Run("stop", nil) })
		churning = append(churning, r)
	}
	n := ocftest.Churn(t, steady, churning, cycles)
	t.Logf("%d registrations × %d cycles churned beside a steady one, monitored %d times meanwhile", churners, cycles, n)

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
