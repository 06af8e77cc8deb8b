//go:build integration

package registration

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/ocf"
)

// countingProxy forwards to the real Consul at addr and records the
// requests it passed.
type countingProxy struct {
	mu   sync.Mutex
	seen []string
}

func (p *countingProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = nil
}

func newCountingProxy(t *testing.T, addr string) (*countingProxy, string) {
	t.Helper()
	p := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return p, s.Listener.Addr().String()
}

// TestRecurringMonitorRequests: Pacemaker runs the recurring monitor every
// few seconds for every registration, so it asks the agent for its
// services and checks once and refreshes the TTL check, no more; and the
// refresh shows in its verdict: a TTL check that went critical (Pacemaker
// stopped monitoring for a while) passes again, and the monitor succeeds.
func TestRecurringMonitorRequests(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	proxy, addr := newCountingProxy(t, d.addr)
	r := runner(t, "count-reg", map[string]string{"consul_address": addr, "service_name": "count", "check_ttl": "30s"})
	must(t, r, "start", nil, ocf.Success)

	if err := d.api.Agent().UpdateTTL("service:count-node1", "expired", api.HealthCritical); err != nil {
		t.Fatal(err)
	}
	proxy.reset()
	must(t, r, "monitor", recurring, ocf.Success)
	got := proxy.requests()
	if len(got) > 3 {
		t.Errorf("a recurring monitor sent %d requests to Consul, want at most 3 (services, checks, TTL update): %v", len(got), got)
	}
	checks, err := d.api.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	if c := checks["service:count-node1"]; c == nil || c.Status != api.HealthPassing {
		t.Errorf("TTL check after the monitor: %+v, want passing", c)
	}
	must(t, r, "stop", nil, ocf.Success)
}
