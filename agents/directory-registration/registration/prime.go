package registration

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// primeWait bounds one probe of prime; Consul's own check timeout, when
// shorter, bounds it too.
const primeWait = 2 * time.Second

// prime gives each plain HTTP or TCP check of want the initial status
// passing when one probe from this node, made now, passes the way
// Consul's check would (a 2xx answer; an accepted connection). Consul
// starts a new check critical and runs it first after a random part of
// its interval, so without this a freshly started instance would stay
// out of discovery for up to check_interval although its service
// answers. A check that fails the probe, an HTTPS, TCP-over-TLS, gRPC,
// script or TTL check, and a check whose definition sets a status keep what Consul
// would do. It reports how many checks it primed.
func prime(ctx context.Context, want *api.AgentServiceRegistration) int {
	if want == nil {
		return 0
	}
	checks := want.Checks
	if want.Check != nil {
		checks = append(api.AgentServiceChecks{want.Check}, checks...)
	}
	primed := 0
	for _, ch := range checks {
		if ch == nil || ch.Status != "" {
			continue
		}
		wait := primeWait
		if d, err := time.ParseDuration(ch.Timeout); err == nil && d > 0 && d < wait {
			wait = d
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		var ok bool
		switch {
		case ch.HTTP != "":
			ok = probeHTTP(pctx, ch)
		case ch.TCP != "" && !ch.TCPUseTLS:
			ok = probeTCP(pctx, ch.TCP)
		}
		cancel()
		if ok {
			ch.Status = api.HealthPassing
			primed++
		}
	}
	return primed
}

// probeHTTP sends the check's request once: plain http only (an HTTPS
// check's TLS settings are Consul's to apply), no redirects followed.
func probeHTTP(ctx context.Context, ch *api.AgentServiceCheck) bool {
	u, err := url.Parse(ch.HTTP)
	if err != nil || u.Scheme != "http" {
		return false
	}
	method := ch.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), strings.NewReader(ch.Body))
	if err != nil {
		return false
	}
	for k, vs := range ch.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

// probeTCP connects once and hangs up.
func probeTCP(ctx context.Context, addr string) bool {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
