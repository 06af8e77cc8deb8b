//go:build integration

package lua_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxconf"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxtest"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/routes"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/state"
)

// TestKeysParsedOncePerVersion: nginx parses a public key when it first
// meets its version, never per request, and not again when the ACLs
// change or another key comes or goes; a removed key stops verifying at
// once, cached tokens included.
func TestKeysParsedOncePerVersion(t *testing.T) {
	k := newKeys(t)
	k.policy.Issuers[0].KVKeys = "idp"
	up := nginxtest.NewEcho(t)
	// One worker: the parse count nginx reports is that worker's.
	g := nginxtest.Start(t, nginxconf.Settings{
		Routes:     []routes.Route{{Prefix: "/orders/", Service: "orders", Upstream: up.URL}},
		TokenCache: true, Workers: 1, MaxTokenBytes: k.policy.MaxTokenBytes,
	}, k.state(t, map[string]*acl.Document{"orders": allowAll(t)}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parses := func() int {
		t.Helper()
		v, err := g.Admin.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v.KeyParses
	}
	push := func(kv map[string]policy.StoredKey, acls map[string]*acl.Document) *state.State {
		t.Helper()
		st, err := state.NewWithKVKeys(k.policy, kv, acls)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Admin.Push(ctx, st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	const files = 3 // RSA, P-256, P-384; the HMAC secret is no parse
	if n := parses(); n != files {
		t.Fatalf("after the first state %d keys parsed, want %d", n, files)
	}
	for range 20 {
		if resp, _ := g.Do(t, "GET", "/orders/1", "Bearer "+k.token(t, "RS256", claims(), nil), nil); resp.StatusCode != 200 {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
	}
	other, _ := acl.Parse([]byte(`{"version": 2, "rules": [{"action": "allow", "subjects": ["alice"]}]}`))
	push(nil, map[string]*acl.Document{"orders": other})
	if n := parses(); n != files {
		t.Errorf("after 20 requests and an ACL change %d keys parsed, want still %d", n, files)
	}

	// A key from KV: one parse more, the others reused.
	kvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&kvKey.PublicKey)
	ck, err := policy.ParseKeyDocument(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "kv1", &k.policy.Issuers[0])
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string]policy.StoredKey{"jwt/idp/keys/kv1": {Issuer: issuer, Key: ck}}
	st := push(kv, map[string]*acl.Document{"orders": other})
	if n := parses(); n != files+1 {
		t.Errorf("after a key was added %d keys parsed, want %d", n, files+1)
	}
	if v, _ := g.Admin.Get(ctx); v == nil || v.Keys[issuer]["kv1"] != ck.Version || v.KeysVersion != st.KeysVersion {
		t.Errorf("nginx reports %+v, want kv1 at version %s", v, ck.Version)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims(claims()))
	tok.Header["kid"] = "kv1"
	signed, err := tok.SignedString(kvKey)
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := g.Do(t, "GET", "/orders/1", "Bearer "+signed, nil); resp.StatusCode != 200 {
		t.Fatalf("token of the KV key: %d, want 200", resp.StatusCode)
	}

	// Removed: its tokens are refused at once, though cached.
	push(nil, map[string]*acl.Document{"orders": other})
	if resp, _ := g.Do(t, "GET", "/orders/1", "Bearer "+signed, nil); resp.StatusCode != 401 {
		t.Errorf("token of the removed key: %d, want 401", resp.StatusCode)
	}
	if n := parses(); n != files+1 {
		t.Errorf("after a key was removed %d keys parsed, want still %d", n, files+1)
	}
}
