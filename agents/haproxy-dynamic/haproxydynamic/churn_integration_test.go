//go:build integration

package haproxydynamic

import (
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// TestChurn runs several proxies of one node through their whole life at
// the same time (ocftest.Churn), each with its own HAProxy and watcher
// and the same Consul, beside a steady one; the steady proxy must still
// route to its instance afterwards.
func TestChurn(t *testing.T) {
	const churners, cycles = 3, 3
	f := newFixture(t, nil)
	f.register("web-1", backend(t, "1"), true)
	f.run(ocf.ActionStart, nil, ocf.Success)
	f.await("1", 20*time.Second)
	var runners []*ocftest.Runner
	for i, port := range consultest.FreePorts(t, churners) {
		params := maps.Clone(f.params)
		params["routes"] = "web=127.0.0.1:" + strconv.Itoa(port) + "/http"
		r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "haproxy-dynamic", Params: params,
			Env: map[string]string{"HA_RSCTMP": f.dir, "OCF_RESKEY_CRM_meta_timeout": "30000",
				"OCF_RESOURCE_INSTANCE": "churn" + strconv.Itoa(i)}})
		t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
		runners = append(runners, r)
	}
	n := ocftest.Churn(t, f.runner, runners, cycles)
	t.Logf("%d proxies × %d cycles churned beside a steady one, monitored %d times meanwhile", churners, cycles, n)
	if got := f.hits(12); keys(got) != "1" {
		t.Errorf("the steady proxy after the churn answered %v, want only instance 1", got)
	}
	f.run(ocf.ActionMonitor, deep, ocf.Success)
}
