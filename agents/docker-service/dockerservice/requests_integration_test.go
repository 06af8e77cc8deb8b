//go:build integration

package dockerservice

import (
	"slices"
	"strconv"
	"testing"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// TestMonitorConsulRequests counts what a monitor of a registered
// container asks Consul: the registration's two reads of the local agent
// (services, checks), nothing more. Pacemaker runs it every 10 s for
// every resource, on every node.
func TestMonitorConsulRequests(t *testing.T) {
	consul := consultest.StartServer(t, &consultest.Options{Dev: true})
	proxy := consultest.NewCountingProxy(t, consul.HTTPAddr(0))
	d := sharedEngine(t, engineDocker)
	s := newService(t, d, imageRegistrator, map[string]string{"register": "true", "consul_address": proxy.Addr})
	extra := map[string]string{"OCF_RESKEY_service_port": strconv.Itoa(s.port), "OCF_RESKEY_CRM_meta_on_node": "node1"}
	s.must(t, "start", extra, ocf.Success)
	t.Cleanup(func() { s.Run("stop", extra) })
	want := []string{"GET /v1/agent/services", "GET /v1/agent/checks"}
	for _, step := range []struct{ name, interval, depth string }{
		{"recurring monitor", "10000", ""},
		{"depth-10 monitor", "60000", "10"},
		{"probe", "", ""},
	} {
		env := map[string]string{"OCF_RESKEY_CRM_meta_interval": step.interval, "OCF_CHECK_LEVEL": step.depth}
		for k, v := range extra {
			env[k] = v
		}
		proxy.Reset()
		// The HTTP check may not have passed yet: running either way.
		if got := s.Run("monitor", env); got.Code != ocf.Success && got.Code != ocf.Degraded {
			t.Fatalf("%s: %v %q", step.name, got.Code, got.Reason)
		}
		if got := proxy.Requests(); !slices.Equal(got, want) {
			t.Errorf("a %s sent %v to Consul, want %v", step.name, got, want)
		}
	}
}
