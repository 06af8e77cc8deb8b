package registration

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// hostileConsul answers like a Consul agent that someone with write
// access filled with what real Consul never returns (null entries,
// entries filed under another ID) or with check output full of escape
// sequences. It is a fake only to inject those faults; everything else
// is tested against real Consul (integration_test.go). It records the
// requests that would change something.
type hostileConsul struct {
	addr     string
	services string // the body of GET /v1/agent/services
	checks   string // the body of GET /v1/agent/checks

	mu      sync.Mutex
	changes []string // "PUT /v1/agent/service/deregister/x", ...
}

func newHostileConsul(t *testing.T, services, checks string) *hostileConsul {
	h := &hostileConsul{services: services, checks: checks}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.Method == http.MethodGet && req.URL.Path == "/v1/agent/services":
			h.mu.Lock()
			defer h.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, h.services)
		case req.Method == http.MethodGet && req.URL.Path == "/v1/agent/checks":
			h.mu.Lock()
			defer h.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, h.checks)
		case req.Method == http.MethodPut:
			h.mu.Lock()
			defer h.mu.Unlock()
			h.changes = append(h.changes, req.Method+" "+req.URL.Path)
			if strings.HasPrefix(req.URL.Path, "/v1/agent/service/deregister/") {
				// What a deregistration leaves: nothing.
				h.services, h.checks = "{}", "{}"
			}
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(srv.Close)
	h.addr = strings.TrimPrefix(srv.URL, "http://")
	return h
}

func (h *hostileConsul) changed() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.changes...)
}

func hostileRunner(t *testing.T, h *hostileConsul) *ocftest.Runner {
	return ocftest.NewRunner(t, New(), ocftest.Config{Name: "directory-registration",
		Params: map[string]string{"consul_address": h.addr, "service_name": "orders", "drain_period": "0"},
		Env: map[string]string{"OCF_RESOURCE_INSTANCE": "orders-reg", "OCF_RESKEY_CRM_meta_on_node": "node1",
			"OCF_RESKEY_CRM_meta_timeout": "5000"}})
}

// TestNullEntries: null entries in the agent's maps, or entries under
// another key than their ID, are skipped with a log line; neither monitor
// nor stop fails on them (the old agent panicked: exit 1, and a failed
// stop fences the node).
func TestNullEntries(t *testing.T) {
	const own = `"orders-node1": {"ID": "orders-node1", "Service": "orders", "Meta": {"ha_resource": "orders-reg"}}`
	tests := []struct {
		name, services, checks string
		probe, monitor         ocf.Code
		deregistered           bool
	}{
		{"null service", `{"orders-node1": null, "x": null}`, `{"c": null}`, ocf.NotRunning, ocf.NotRunning, false},
		{"service under another key", `{"orders-node1": {"ID": "evil", "Service": "orders", "Meta": {"ha_resource": "orders-reg"}}}`, `{}`, ocf.NotRunning, ocf.NotRunning, false},
		{"null beside our own", `{` + own + `, "x": null}`, `{"service:orders-node1": null, "y": null}`, ocf.Success, ocf.Success, true},
		{"null check of our own", `{` + own + `}`, `{"service:orders-node1": {"CheckID": "other", "ServiceID": "orders-node1", "Status": "critical"}}`, ocf.Success, ocf.Success, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHostileConsul(t, tt.services, tt.checks)
			r := hostileRunner(t, h)
			// The recurring monitor first: it records the registration
			// as this boot's, without which the probe would withdraw
			// it as one Consul restored from before a reboot.
			for _, step := range []struct {
				action string
				extra  map[string]string
				want   ocf.Code
			}{
				{"monitor", map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"}, tt.monitor},
				{"monitor", map[string]string{"OCF_RESKEY_CRM_meta_interval": ""}, tt.probe},
			} {
				got := r.Run(step.action, step.extra)
				if got.Code != step.want {
					t.Errorf("%s = %v %q, want %v", step.action, got.Code, got.Reason, step.want)
				}
				if !strings.Contains(got.Stderr, "skipping a malformed entry") {
					t.Errorf("%s logged nothing about the malformed entry:\n%s", step.action, got.Stderr)
				}
			}
			if got := r.Run("stop", nil); got.Code != ocf.Success {
				t.Errorf("stop = %v %q, want success", got.Code, got.Reason)
			}
			c := strings.Join(h.changed(), " ")
			switch {
			case !tt.deregistered && c != "":
				t.Errorf("stop changed %v, though nothing was this resource's", c)
			case tt.deregistered && !strings.Contains(c, "/v1/agent/service/deregister/orders-node1"):
				t.Errorf("stop did not deregister orders-node1: %v", c)
			}
		})
	}
}

// TestHostileCheckOutput: what a check prints reaches the exit reason and
// the log without escape sequences or control characters, cut on a
// character boundary.
func TestHostileCheckOutput(t *testing.T) {
	h := newHostileConsul(t,
		`{"orders-node1": {"ID": "orders-node1", "Service": "orders", "Meta": {"ha_resource": "orders-reg"}}}`,
		`{"service:orders-node1": {"CheckID": "service:orders-node1", "ServiceID": "orders-node1", "Name": "web\u202e\u001b[8m", "Status": "critical",
		  "Output": "\u001b]0;owned\u0007\u001b[2J\u001b[31mHTTP 500\u001b[0m\r\u000b\u0085\u2028`+strings.Repeat("\u00e9", 200)+`"}}`)
	r := hostileRunner(t, h)
	got := r.Run("monitor", map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"})
	if got.Code != ocf.Degraded || !strings.Contains(got.Reason, `check "web" (service:orders-node1) is critical: HTTP 500 éé`) {
		t.Fatalf("monitor = %v %q", got.Code, got.Reason)
	}
	checkClean(t, "exit reason", got.Reason, 1024)
	for _, line := range strings.Split(strings.TrimSuffix(got.Stderr, "\n"), "\n") {
		checkClean(t, "log line", line, 1<<16)
	}
}
