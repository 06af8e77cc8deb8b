//go:build integration

package lua_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxconf"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxtest"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/routes"
)

// TestClientCertificatesPerRoute: a route with mtls needs a client
// certificate signed by the CA (and a token); the others do not.
func TestClientCertificatesPerRoute(t *testing.T) {
	k := newKeys(t)
	up := nginxtest.NewEcho(t)
	redirect := nginxtest.FreePort(t)
	g := nginxtest.Start(t, nginxconf.Settings{
		Routes: []routes.Route{
			{Prefix: "/secure/", Service: "secure", Upstream: up.URL, MTLS: true},
			{Prefix: "/open/", Service: "open", Upstream: up.URL},
		},
		RedirectListen: redirect, MaxTokenBytes: k.policy.MaxTokenBytes,
	}, k.state(t, map[string]*acl.Document{"secure": allowAll(t), "open": allowAll(t)}))
	tok := "Bearer " + k.token(t, "RS256", claims(), nil)
	do := func(c *http.Client, path, auth string) int {
		req, _ := http.NewRequest("GET", g.Base+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cases := []struct {
		name   string
		client *http.Client
		path   string
		auth   string
		want   int
	}{
		{"mtls route without a certificate", g.Client, "/secure/x", tok, 403},
		{"mtls route with a certificate", g.MTLSClient, "/secure/x", tok, 200},
		{"mtls route with a certificate but no token", g.MTLSClient, "/secure/x", "", 401},
		{"open route without a certificate", g.Client, "/open/x", tok, 200},
	}
	for _, c := range cases {
		if got := do(c.client, c.path, c.auth); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}

	// HTTP → HTTPS redirect.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get("http://" + redirect + "/open/x?q=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusPermanentRedirect || !strings.HasPrefix(loc, "https://") || !strings.HasSuffix(loc, "/open/x?q=1") {
		t.Errorf("plain HTTP: %d to %q, want 308 to https://.../open/x?q=1", resp.StatusCode, loc)
	}
}
