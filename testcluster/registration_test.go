//go:build integration

package testcluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// catalogService returns the instances of service in the catalog of the
// Consul agent at addr, with their tags.
func catalogService(t *testing.T, addr, service string) map[string][]string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/catalog/service/" + service)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	defer resp.Body.Close()
	var entries []struct {
		ServiceID   string
		ServiceTags []string
	}
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		t.Fatalf("catalog: %v", err)
	}
	out := map[string][]string{}
	for _, e := range entries {
		out[e.ServiceID] = e.ServiceTags
	}
	return out
}

// TestRegistrationOnPacemaker runs a service and its registration as a
// group under Pacemaker: enabling it makes the service visible in Consul,
// disabling it withdraws it within one monitor interval, and a change of a
// reloadable parameter is applied by reload-agent, without a restart.
func TestRegistrationOnPacemaker(t *testing.T) {
	requireCluster(t)
	consul := consultest.StartServer(t, &consultest.Options{Dev: true})
	addr := consul.HTTPAddr(0)
	group := uniqueID(t, "hafw-grp")
	svc, reg, name := group+"-svc", group+"-reg", group+"-web"
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")

	pcs(t, "resource", "create", svc, "ocf:ha-framework:example", "label=web", "state="+filepath.Join(dir, "state"),
		"--group", group, "--disabled")
	pcs(t, "resource", "create", reg, "ocf:ha-framework:directory-registration", "consul_address="+addr,
		"service_name="+name, "service_port=8080", "service_tags=v1", "check_ttl=30s", "drain_period=1s",
		"trace_ra=1", "trace_file="+trace, "op", "monitor", "interval=5s", "timeout=20s", "--group", group)
	t.Cleanup(func() { deleteResource(t, group) })

	enabled := time.Now()
	pcs(t, "resource", "enable", svc)
	var visible time.Duration
	waitFor(t, 60*time.Second, "service visible in Consul", func() (bool, string) {
		n := len(catalogService(t, addr, name))
		visible = time.Since(enabled)
		return n == 1, fmt.Sprintf("%d instances", n)
	})
	t.Logf("pcs resource enable → service visible in Consul: %v", visible.Round(time.Millisecond))
	settle(t)

	t.Run("reloadable change is applied without restart", func(t *testing.T) {
		before := countActions(t, trace)
		pcs(t, "resource", "update", reg, "service_tags=v2")
		waitFor(t, 30*time.Second, "new tags in the catalog", func() (bool, string) {
			for _, tags := range catalogService(t, addr, name) {
				return slices.Contains(tags, "v2"), fmt.Sprint(tags)
			}
			return false, "no instance"
		})
		settle(t)
		after := countActions(t, trace)
		if after["reload-agent"] <= before["reload-agent"] || after["stop"] != before["stop"] {
			t.Errorf("want a reload-agent and no stop: before %v, after %v", before, after)
		}
	})

	t.Run("disable withdraws the registration within one monitor interval", func(t *testing.T) {
		disabled := time.Now()
		pcs(t, "resource", "disable", reg)
		waitFor(t, 5*time.Second, "registration gone", func() (bool, string) {
			n := len(catalogService(t, addr, name))
			return n == 0, fmt.Sprintf("%d instances after %v", n, time.Since(disabled).Round(time.Millisecond))
		})
		t.Logf("pcs resource disable → gone from Consul: %v", time.Since(disabled).Round(time.Millisecond))
		if _, err := os.Stat(filepath.Join(dir, "state")); err != nil {
			t.Errorf("disabling the registration stopped the service too: %v", err)
		}
	})
}

// TestRegistrationOCFTester runs the real ocf-tester on the installed
// agent against a real Consul.
func TestRegistrationOCFTester(t *testing.T) {
	consul := consultest.StartServer(t, &consultest.Options{Dev: true})
	ocfTester(t, "directory-registration", map[string]string{
		"consul_address": consul.HTTPAddr(0), "service_name": "ocftester", "service_port": "9000", "check_ttl": "30s",
	}, map[string]string{"HA_RSCTMP": t.TempDir()})
}
