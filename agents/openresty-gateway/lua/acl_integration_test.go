//go:build integration

package lua_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxconf"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxtest"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/routes"
)

const ordersACL = `{"version": 2, "rules": [
	{"name": "no-internal", "action": "deny", "paths": [{"prefix": "/orders/internal"}]},
	{"name": "admins", "action": "allow", "groups": ["admin"]},
	{"name": "readers", "action": "allow", "subjects": ["alice"], "scopes": ["orders:read"], "methods": ["GET"], "paths": [{"prefix": "/orders/"}, {"exact": "/orders"}]},
	{"name": "writers", "action": "allow", "subjects": ["bob"], "scopes": ["orders:write"], "methods": ["POST", "PUT"], "paths": [{"prefix": "/orders/api"}]}
]}`

func mustACL(t testing.TB, doc string) *acl.Document {
	t.Helper()
	d, err := acl.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestACL(t *testing.T) {
	k := newKeys(t)
	up := nginxtest.NewEcho(t)
	st := k.state(t, map[string]*acl.Document{"orders": mustACL(t, ordersACL),
		"shadowed": mustACL(t, `{"version": 1, "mode": "shadow", "rules": [{"action": "deny"}]}`)})
	g := nginxtest.Start(t, nginxconf.Settings{
		Routes: []routes.Route{
			{Prefix: "/orders", Service: "orders", Upstream: up.URL},
			{Prefix: "/shadow/", Service: "shadowed", Upstream: up.URL},
			{Prefix: "/nacl/", Service: "no-acl", Upstream: up.URL},
		},
		TokenCache: true, MaxTokenBytes: k.policy.MaxTokenBytes,
	}, st)
	tok := func(sub string, extra map[string]any) string {
		c := claims()
		c["sub"] = sub
		for k, v := range extra {
			c[k] = v
		}
		return "Bearer " + k.token(t, "ES256", c, nil)
	}
	alice := tok("alice", map[string]any{"scope": "orders:read profile"})
	aliceNoScope := tok("alice", nil)
	bob := tok("bob", map[string]any{"scp": []string{"orders:write"}})
	admin := tok("carol", map[string]any{"groups": []string{"staff", "admin"}})
	mallory := tok("mallory", map[string]any{"scope": "orders:read orders:write"})
	cases := []struct {
		name, method, path, auth string
		want                     int
	}{
		{"reader reads", "GET", "/orders/42", alice, 200},
		{"reader reads the exact path", "GET", "/orders", alice, 200},
		{"reader without the scope", "GET", "/orders/42", aliceNoScope, 403},
		{"reader writes", "POST", "/orders/42", alice, 403},
		{"writer writes", "POST", "/orders/api/new", bob, 200},
		{"writer writes outside its prefix", "POST", "/orders/apiary", bob, 403},
		{"writer reads", "GET", "/orders/42", bob, 403},
		{"admin anything", "DELETE", "/orders/42", admin, 200},
		{"deny before allow: admin on internal", "GET", "/orders/internal/x", admin, 403},
		{"deny prefix covers its own path", "GET", "/orders/internal", admin, 403},
		{"unknown subject", "GET", "/orders/42", mallory, 403},
		{"no token is 401, not 403", "GET", "/orders/42", "", 401},
		{"shadow mode lets a denied request through", "GET", "/shadow/x", mallory, 200},
		{"shadow mode still needs a token", "GET", "/shadow/x", "", 401},
		{"service without an ACL: deny", "GET", "/nacl/x", admin, 403},
	}
	for _, c := range cases {
		resp, _ := g.Do(t, c.method, c.path, c.auth, nil)
		if resp.StatusCode != c.want {
			t.Errorf("%s: %s %s: status %d, want %d", c.name, c.method, c.path, resp.StatusCode, c.want)
		}
	}
	if !strings.Contains(g.LogTail(), "shadow deny service=shadowed sub=mallory") {
		t.Errorf("the shadow decision is not logged:\n%s", g.LogTail())
	}

	// A pushed state replaces the ACL at once, without a reload.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st2 := k.state(t, map[string]*acl.Document{"orders": mustACL(t, `{"version": 3, "rules": [{"action": "allow", "subjects": ["mallory"]}]}`)})
	if err := g.Admin.Push(ctx, st2); err != nil {
		t.Fatal(err)
	}
	if resp, _ := g.Do(t, "GET", "/orders/42", mallory, nil); resp.StatusCode != 200 {
		t.Errorf("after the push mallory gets %d, want 200", resp.StatusCode)
	}
	if resp, _ := g.Do(t, "GET", "/orders/42", alice, nil); resp.StatusCode != 403 {
		t.Errorf("after the push alice gets %d, want 403", resp.StatusCode)
	}
	v, err := g.Admin.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != st2.Version || v.KeysVersion != st2.KeysVersion || v.ACLs["orders"] != st2.ACLs["orders"].Digest {
		t.Errorf("nginx reports %+v, want the pushed versions %s/%s", v, st2.Version, st2.KeysVersion)
	}

	// A state nginx cannot compile is refused; the one in force stays.
	broken := *st2
	bp := *st2.Policy
	bp.Issuers = append([]policy.CompiledIssuer(nil), st2.Policy.Issuers...)
	bp.Issuers[0].Keys = append(bp.Issuers[0].Keys[:0:0], bp.Issuers[0].Keys...)
	bp.Issuers[0].Keys[0].PEM = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
	broken.Policy = &bp
	broken.Version = "broken"
	if err := g.Admin.Push(ctx, &broken); err == nil || !strings.Contains(err.Error(), "422") {
		t.Errorf("push of a state with a bad key: %v, want a refusal (422)", err)
	}
	if v, _ := g.Admin.Get(ctx); v == nil || v.Version != st2.Version {
		t.Errorf("after a refused push nginx reports %+v, want version %s", v, st2.Version)
	}
	if resp, _ := g.Do(t, "GET", "/orders/42", mallory, nil); resp.StatusCode != 200 {
		t.Errorf("after a refused push mallory gets %d, want 200", resp.StatusCode)
	}
}

// TestNoStateDeniesEverything: an nginx started without any state (no
// companion yet, nothing persisted) lets nothing through.
func TestNoStateDeniesEverything(t *testing.T) {
	k := newKeys(t)
	up := nginxtest.NewEcho(t)
	g := nginxtest.Start(t, nginxconf.Settings{Routes: []routes.Route{{Prefix: "/", Service: "web", Upstream: up.URL}}}, nil)
	if resp, _ := g.Do(t, "GET", "/x", "Bearer "+k.token(t, "RS256", claims(), nil), nil); resp.StatusCode != 401 {
		t.Errorf("status %d, want 401", resp.StatusCode)
	}
	v, err := g.Admin.Get(context.Background())
	if err != nil || v.Version != "" {
		t.Errorf("versions %+v, %v; want none", v, err)
	}
}
