//go:build integration

package lua_test

import (
	"strings"
	"testing"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxconf"
)

// testClaimHeaders are the claims the shared gateway passes upstream.
var testClaimHeaders = []nginxconf.ClaimHeader{
	{Claim: "email", Header: "X-Auth-Email"},
	{Claim: "tenant", Header: "X-Auth-Tenant"},
	{Claim: "https://example.com/roles", Header: "X-Auth-Roles"},
}

// TestClaimHeaders: chosen verified claims reach the upstream in their
// headers, one line each; a value that cannot be sent faithfully is left
// out (the request still passes), and a client's copies never arrive.
func TestClaimHeaders(t *testing.T) {
	g, k := gateway(t)
	forged := map[string]string{"X-Auth-Email": "root@evil.test", "x-auth-tenant": "other", "X-AUTH-ROLES": "admin"}
	cases := []struct {
		name  string
		claim map[string]any
		want  map[string]string // header → value; "" means absent
	}{
		{"strings", map[string]any{"email": "alice@example.com", "tenant": "t-1"},
			map[string]string{"X-Auth-Email": "alice@example.com", "X-Auth-Tenant": "t-1", "X-Auth-Roles": ""}},
		{"numbers, booleans, arrays", map[string]any{"email": true, "tenant": 42, "https://example.com/roles": []any{"reader", "writer", 7}},
			map[string]string{"X-Auth-Email": "true", "X-Auth-Tenant": "42", "X-Auth-Roles": "reader,writer,7"}},
		{"fraction", map[string]any{"tenant": 1.5}, map[string]string{"X-Auth-Tenant": "1.5"}},
		{"absent claims: forged copies stripped", map[string]any{}, map[string]string{"X-Auth-Email": "", "X-Auth-Tenant": "", "X-Auth-Roles": ""}},
		{"control characters", map[string]any{"email": "a@b\r\nX-Auth-Tenant: root", "tenant": "t\x00"}, map[string]string{"X-Auth-Email": "", "X-Auth-Tenant": ""}},
		{"too long", map[string]any{"email": strings.Repeat("a", 1025), "tenant": strings.Repeat("t", 1024)},
			map[string]string{"X-Auth-Email": "", "X-Auth-Tenant": strings.Repeat("t", 1024)}},
		{"object and null", map[string]any{"email": map[string]any{"x": 1}, "tenant": nil}, map[string]string{"X-Auth-Email": "", "X-Auth-Tenant": ""}},
		{"array with a comma or a nested array", map[string]any{"https://example.com/roles": []any{"a,b"}, "tenant": []any{[]any{"x"}}},
			map[string]string{"X-Auth-Roles": "", "X-Auth-Tenant": ""}},
		{"empty string and array", map[string]any{"email": "", "tenant": []any{}}, map[string]string{"X-Auth-Email": "", "X-Auth-Tenant": ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := claims()
			for name, v := range c.claim {
				cl[name] = v
			}
			tok := k.token(t, "ES256", cl, nil)
			resp, seen := g.Do(t, "GET", "/orders/1", "Bearer "+tok, forged)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200 (a claim that cannot be sent does not refuse the token)\n%s", resp.StatusCode, g.LogTail())
			}
			for h, want := range c.want {
				got := seen.Header.Values(h)
				switch {
				case want == "" && len(got) != 0:
					t.Errorf("upstream saw %s %q, want none", h, got)
				case want != "" && (len(got) != 1 || got[0] != want):
					t.Errorf("upstream saw %s %q, want only %q", h, got, want)
				}
			}
		})
	}
}
