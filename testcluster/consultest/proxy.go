package consultest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// CountingProxy forwards HTTP requests to one agent's API and records each
// request's method and path, so that a test can count what an agent under
// test asks Consul (per monitor, per start). Point the agent's
// consul_address at Addr.
type CountingProxy struct {
	// Addr is the proxy's 127.0.0.1:port.
	Addr string

	mu   sync.Mutex
	seen []string
}

// NewCountingProxy starts a proxy to the HTTP API at addr (host:port),
// closed when the test ends.
func NewCountingProxy(t testing.TB, addr string) *CountingProxy {
	t.Helper()
	p := &CountingProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	p.Addr = s.Listener.Addr().String()
	return p
}

// Requests returns the requests passed since the start or the last Reset,
// in order, as "GET /v1/agent/services".
func (p *CountingProxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// Reset forgets the requests recorded so far.
func (p *CountingProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = nil
}
