//go:build integration

package registration

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// TestProbeAfterNodeReturn: a node that was fenced (or lost power)
// comes back, and its Consul agent restores from its data directory the
// registration it held, while the resource runs elsewhere. The state
// directory (HA_RSCTMP) was cleared at boot, so nothing records that this
// resource registered it in this boot: the probe withdraws it and says
// "not running". The old probe said running (degraded), Pacemaker saw the
// resource active on two nodes and stopped it on both. Within a boot (a
// restart of Pacemaker, or of the agent, on a live node) the record is
// there and the probe says running, as a probe of a running instance does.
func TestProbeAfterNodeReturn(t *testing.T) {
	t.Parallel()
	// A server with a data directory, unlike a dev agent: Consul
	// persists agent registrations there, as on a real node.
	c := consultest.StartServer(t, nil)
	addr := c.HTTPAddr(0)
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = addr
	capi, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Carries the resource's meta without being its registration: the
	// probe leaves it alone after the return as before.
	other := &api.AgentServiceRegistration{ID: "orders-elsewhere", Name: "orders", Port: 2,
		Meta: map[string]string{"ha_resource": "orders-reg"}}
	if err := capi.Agent().ServiceRegister(other); err != nil {
		t.Fatal(err)
	}
	def := filepath.Join(t.TempDir(), "orders.json")
	writeDefinition(t, def, `{"service": {"name": "orders", "port": 8443, "checks": [{"ttl": "30s"}]}}`)
	params := map[string]string{"consul_address": addr, "definition_file": def, "drain_period": "0"}
	r := runner(t, "orders-reg", params)

	must(t, r, "start", nil, ocf.Success)
	must(t, r, "monitor", probe, ocf.Success)
	must(t, r, "monitor", recurring, ocf.Success)
	// Pacemaker restarted on this node, or the agent crashed: the state
	// directory is the same one.
	again := ocftest.NewRunner(t, New(), ocftest.Config{Name: "directory-registration", Params: params,
		Env: map[string]string{"OCF_RESOURCE_INSTANCE": "orders-reg", "OCF_RESKEY_CRM_meta_on_node": "node1", "HA_RSCTMP": r.StateDir()}})
	must(t, again, "monitor", probe, ocf.Success)

	// Power lost, then the node boots: Consul comes back with what it
	// had, HA_RSCTMP comes back empty.
	c.Kill(0)
	c.Restart(0)
	waitRegistered(t, capi, "orders-node1")
	booted := runner(t, "orders-reg", params)
	if got := must(t, booted, "monitor", probe, ocf.NotRunning); got.Reason != "" {
		t.Errorf("probe after the return: reason %q, want none", got.Reason)
	}
	services, err := capi.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := services["orders-node1"]; ok {
		t.Error("the probe after the return left the restored registration in Consul")
	}
	if _, ok := services["orders-elsewhere"]; !ok {
		t.Error("the probe after the return removed orders-elsewhere, which this resource never registered")
	}
	must(t, booted, "monitor", probe, ocf.NotRunning)

	// The resource then starts here: a normal probe says running again.
	must(t, booted, "start", nil, ocf.Success)
	must(t, booted, "monitor", probe, ocf.Success)
	must(t, booted, "stop", nil, ocf.Success)
}

// TestMonitorRecordsAgain: a recurring monitor that finds the resource's
// registration without a record (the state directory cleaned by hand
// while the resource runs) records it again, so that a later probe on
// this node, after a restart of Pacemaker, does not take it for one
// restored from before a boot.
func TestMonitorRecordsAgain(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	params := map[string]string{"consul_address": d.addr, "service_name": "ledger", "service_port": "8443", "drain_period": "0"}
	r := runner(t, "ledger-reg", params)
	must(t, r, "start", nil, ocf.Success)
	// What the state directory looks like after a boot.
	fresh := t.TempDir()
	env := map[string]string{"OCF_RESOURCE_INSTANCE": "ledger-reg", "OCF_RESKEY_CRM_meta_on_node": "node1", "HA_RSCTMP": fresh}
	cleaned := ocftest.NewRunner(t, New(), ocftest.Config{Name: "directory-registration", Params: params, Env: env})
	must(t, cleaned, "monitor", recurring, ocf.Success)
	must(t, cleaned, "monitor", probe, ocf.Success)
	if services, err := d.api.Agent().Services(); err != nil {
		t.Fatal(err)
	} else if _, ok := services["ledger-node1"]; !ok {
		t.Error("the probe after a recurring monitor withdrew the running registration")
	}
	must(t, cleaned, "stop", nil, ocf.Success)
}

// waitRegistered waits until the local agent holds service id: a
// restarted agent loads its persisted services as it starts.
func waitRegistered(t *testing.T, capi *api.Client, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		services, err := capi.Agent().Services()
		if err == nil && services[id] != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Consul did not restore %s after its restart (last error %v, services %v)", id, err, services)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
