//go:build integration

package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// TestTokenRefused: the gateway's monitors when Consul (with ACLs,
// default deny) refuses the token in token_file or hides the ACL and key
// documents from it. The reason says which token to fix, never "Consul
// unreachable", and the ACL and key in force stay. The old agent reported
// a refused token as "Consul unreachable", and a token without key:read
// made its companion delete every ACL and key from Consul (all callers
// denied) with a healthy monitor.
func TestTokenRefused(t *testing.T) {
	f := newFixture(t, 90*24*time.Hour)
	// The fixture's Consul has no ACLs: this test's has.
	cl, admin := consultest.StartACLServer(t)
	f.kv = admin
	reader := consultest.Token(t, admin, "gateway-reader", `key_prefix "acl/" { policy = "read" }
key_prefix "jwt/" { policy = "read" }`)
	blind := consultest.Token(t, admin, "gateway-blind", `node_prefix "" { policy = "read" }`)
	// A short path: the reason names it within 128 bytes.
	dir, err := os.MkdirTemp("/tmp", "tok")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tokenFile := filepath.Join(dir, "t")
	useToken := func(tok string) {
		t.Helper()
		if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f.params["consul_address"] = cl.HTTPAddr(0)
	f.params["token_file"] = tokenFile
	f.kvKeys(t, "idp")
	r := f.runner(t)
	restart := func() {
		t.Helper()
		for _, action := range []string{ocf.ActionStop, ocf.ActionStart} {
			if res := r.Run(action, nil); res.Code != ocf.Success {
				t.Fatalf("%s: %v %q\n%s", action, res.Code, res.Reason, res.Stderr)
			}
		}
	}
	alice := f.issuer.bearer(t, "alice")
	f.put(t, "acl/orders", `{"version": 1, "rules": [{"action": "allow", "subjects": ["alice", "carol"]}]}`)
	_, pemDoc, carol := newKVKey(t, "kv1", "carol")
	f.put(t, "jwt/idp/keys/kv1", pemDoc)

	useToken(reader)
	restart()
	eventually(t, "the ACL and the key from Consul enforced", func() bool {
		return f.get(t, "/orders/1", alice) == 200 && f.get(t, "/orders/1", carol) == 200
	})
	if res := r.Run(ocf.ActionMonitor, deep); res.Code != ocf.Success {
		t.Errorf("deep monitor with a token that may read: %v %q", res.Code, res.Reason)
	}

	want := "fix the token in token_file " + tokenFile + ": "
	for _, tc := range []struct{ name, token, reason string }{
		{"without key:read", blind, want + "it may not read acl/orders, jwt/idp/keys/kv1 (key:read)"},
		{"unknown to Consul", "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9", want + "Consul refuses it (403 ACL not found)"},
	} {
		useToken(tc.token)
		restart()
		got := r.Run(ocf.ActionMonitor, nil)
		for start := time.Now(); got.Code != ocf.Degraded || !strings.HasPrefix(got.Reason, tc.reason); got = r.Run(ocf.ActionMonitor, nil) {
			if time.Since(start) > 10*time.Second {
				t.Errorf("%s: monitor %v %q after 10s, want degraded starting %q", tc.name, got.Code, got.Reason, tc.reason)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := r.Run(ocf.ActionMonitor, deep); got.Code != ocf.Degraded || !strings.HasPrefix(got.Reason, tc.reason) {
			t.Errorf("%s: deep monitor %v %q, want degraded starting %q", tc.name, got.Code, got.Reason, tc.reason)
		}
		if c := f.get(t, "/orders/1", alice); c != 200 {
			t.Errorf("%s: alice gets %d, want 200 (the ACL in force stays)", tc.name, c)
		}
		if c := f.get(t, "/orders/1", carol); c != 200 {
			t.Errorf("%s: carol, whose token a key from Consul signed, gets %d, want 200 (the key in force stays)", tc.name, c)
		}
	}
}
