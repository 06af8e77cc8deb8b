package registration

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/consul/api"
)

func TestPrime(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("X-Probe") != "yes" {
			http.Error(w, "wrong request", http.StatusBadRequest)
		}
	}))
	defer ok.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer plain.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	redirect := httptest.NewServer(http.RedirectHandler(plain.URL, http.StatusFound))
	defer redirect.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer secure.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name  string
		check api.AgentServiceCheck
		want  string
	}{
		{"http 2xx", api.AgentServiceCheck{HTTP: plain.URL}, api.HealthPassing},
		{"method and header used", api.AgentServiceCheck{HTTP: ok.URL, Method: "POST", Header: map[string][]string{"X-Probe": {"yes"}}}, api.HealthPassing},
		{"http 5xx", api.AgentServiceCheck{HTTP: failing.URL}, ""},
		{"redirect not followed", api.AgentServiceCheck{HTTP: redirect.URL}, ""},
		{"https left to Consul", api.AgentServiceCheck{HTTP: secure.URL, TLSSkipVerify: true}, ""},
		{"wrong request", api.AgentServiceCheck{HTTP: ok.URL}, ""},
		{"tcp open", api.AgentServiceCheck{TCP: l.Addr().String()}, api.HealthPassing},
		{"tcp over tls left to Consul", api.AgentServiceCheck{TCP: l.Addr().String(), TCPUseTLS: true}, ""},
		{"tcp closed", api.AgentServiceCheck{TCP: closedAddr}, ""},
		{"ttl", api.AgentServiceCheck{TTL: "30s"}, ""},
		{"script", api.AgentServiceCheck{Args: []string{"/bin/true"}}, ""},
		{"status from the definition kept", api.AgentServiceCheck{HTTP: plain.URL, Status: api.HealthWarning}, api.HealthWarning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := tc.check
			want := &api.AgentServiceRegistration{Checks: api.AgentServiceChecks{&ch}}
			prime(context.Background(), want)
			if ch.Status != tc.want {
				t.Errorf("status %q, want %q", ch.Status, tc.want)
			}
		})
	}

	// The single Check field counts too, and the count is returned.
	single := &api.AgentServiceCheck{TCP: l.Addr().String()}
	if n := prime(context.Background(), &api.AgentServiceRegistration{Check: single, Checks: api.AgentServiceChecks{{HTTP: plain.URL}}}); n != 2 || single.Status != api.HealthPassing {
		t.Errorf("primed %d, Check status %q; want 2, passing", n, single.Status)
	}
	if n := prime(context.Background(), nil); n != 0 {
		t.Errorf("nil registration primed %d", n)
	}
}
