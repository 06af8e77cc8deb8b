//go:build integration

package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
	"github.com/ha-framework/ha-framework/ocf"
)

// TestKeysFromConsul: a public key put in Consul KV under the issuer's
// kv_keys folder verifies tokens without a reload; a hostile document in
// its place is refused (the last good key stays, the monitor reports
// degraded with the reason); a deleted key stops verifying; a restart
// during a Consul outage still enforces the last good key.
func TestKeysFromConsul(t *testing.T) {
	f := newFixture(t, 90*24*time.Hour)
	f.kvKeys(t, "idp")
	r := f.runner(t)
	if res := r.Run(ocf.ActionStart, nil); res.Code != ocf.Success {
		t.Fatalf("start: %v %q\n%s", res.Code, res.Reason, res.Stderr)
	}
	f.put(t, "acl/orders", `{"version": 1, "rules": [{"action": "allow"}]}`)
	eventually(t, "the ACL enforced", func() bool { return f.get(t, "/orders/1", f.issuer.bearer(t, "alice")) == 200 })

	kvKey, pemDoc, carol := newKVKey(t, "kv1", "carol")
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	jwkDoc := `{"kty":"EC","crv":"P-256","kid":"kv1","alg":"ES256","x":"` + b64(kvKey.X.FillBytes(make([]byte, 32))) +
		`","y":"` + b64(kvKey.Y.FillBytes(make([]byte, 32))) + `"}`
	if c := f.get(t, "/orders/1", carol); c != 401 {
		t.Fatalf("a token of a key not yet in Consul: %d, want 401", c)
	}

	const path = "jwt/idp/keys/kv1"
	began := time.Now()
	f.put(t, path, pemDoc)
	eventually(t, "the key from Consul verifies", func() bool { return f.get(t, "/orders/1", carol) == 200 })
	t.Logf("a key put in Consul verified tokens after %s", time.Since(began).Round(time.Millisecond))
	if res := r.Run(ocf.ActionMonitor, deep); res.Code != ocf.Success {
		t.Errorf("deep monitor with a key from Consul: %v %q", res.Code, res.Reason)
	}

	// Hostile documents: the last good key stays at kv1; kv2 never
	// verifies; the monitor names the refusal.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.put(t, path, `{"kty":"EC","crv":"P-256","x":"`+b64(other.X.FillBytes(make([]byte, 32)))+`","y":"`+
		b64(other.Y.FillBytes(make([]byte, 32)))+`","d":"`+b64(other.D.FillBytes(make([]byte, 32)))+`"}`)
	eventually(t, "degraded with the reason", func() bool {
		res := r.Run(ocf.ActionMonitor, nil)
		return res.Code == ocf.Degraded && strings.Contains(res.Reason, "JWT key refused, last good kept: "+path) && strings.Contains(res.Reason, "private key")
	})
	if res := r.Run(ocf.ActionMonitor, deep); res.Code != ocf.Degraded || !strings.Contains(res.Reason, "JWT key refused") {
		t.Errorf("deep monitor with a refused key: %v %q, want degraded naming the key", res.Code, res.Reason)
	}
	if c := f.get(t, "/orders/1", carol); c != 200 {
		t.Errorf("after a hostile document at kv1: %d, want 200 (the last good key)", c)
	}
	f.put(t, "jwt/idp/keys/k1", pemDoc) // the file's kid: refused
	eventually(t, "a KV key shadowing a file key refused", func() bool {
		return strings.Contains(r.Run(ocf.ActionMonitor, nil).Reason, "jwt/idp/keys/k1: kid \"k1\" is also a key of jwt_policy_file")
	})
	if _, err := f.kv.KV().Delete("jwt/idp/keys/k1", nil); err != nil {
		t.Fatal(err)
	}

	// The same key as a JWK: no change in force, healthy again.
	f.put(t, path, jwkDoc)
	eventually(t, "healthy again", func() bool { return r.Run(ocf.ActionMonitor, deep).Code == ocf.Success })
	if c := f.get(t, "/orders/1", carol); c != 200 {
		t.Errorf("with the key as a JWK: %d, want 200", c)
	}

	// Deleted: its tokens are refused within the propagation time.
	began = time.Now()
	if _, err := f.kv.KV().Delete(path, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted key stops verifying", func() bool { return f.get(t, "/orders/1", carol) == 401 })
	t.Logf("a key deleted from Consul stopped verifying after %s", time.Since(began).Round(time.Millisecond))
	if res := r.Run(ocf.ActionMonitor, deep); res.Code != ocf.Success {
		t.Errorf("deep monitor after the deletion: %v %q", res.Code, res.Reason)
	}

	// Back, then Consul goes away and the resource restarts: the last
	// good key is enforced from the state directory.
	f.put(t, path, pemDoc)
	eventually(t, "the key back", func() bool { return f.get(t, "/orders/1", carol) == 200 })
	f.consul.Stop(0)
	eventually(t, "degraded during the outage", func() bool {
		res := r.Run(ocf.ActionMonitor, nil)
		return res.Code == ocf.Degraded && strings.Contains(res.Reason, "Consul unreachable")
	})
	if res := r.Run(ocf.ActionStop, nil); res.Code != ocf.Success {
		t.Fatalf("stop: %v %q", res.Code, res.Reason)
	}
	if res := r.Run(ocf.ActionStart, nil); res.Code != ocf.Success {
		t.Fatalf("start during the outage: %v %q\n%s", res.Code, res.Reason, res.Stderr)
	}
	if c := f.get(t, "/orders/1", carol); c != 200 {
		t.Errorf("after a restart during the outage: %d, want 200 (the persisted key)", c)
	}
	eventually(t, "the restarted companion reports the outage", func() bool {
		return r.Run(ocf.ActionMonitor, nil).Code == ocf.Degraded
	})
	if c := f.get(t, "/orders/1", carol); c != 200 {
		t.Errorf("once the restarted companion pushed: %d, want 200 (the persisted key)", c)
	}
}

// kvKeys makes the fixture's issuer also take its keys from Consul KV,
// under jwt/FOLDER/keys/KID.
func (f *fixture) kvKeys(t *testing.T, folder string) {
	t.Helper()
	var pf policy.File
	data, err := os.ReadFile(f.issuer.policyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &pf); err != nil {
		t.Fatal(err)
	}
	pf.Issuers[0].KVKeys = folder
	if data, err = json.Marshal(pf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.issuer.policyFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// newKVKey makes an ES256 key for Consul KV: the key, its public key as a
// PEM document, and the Authorization header of a token it signed for
// sub with kid, from the fixture's issuer.
func newKVKey(t *testing.T, kid, sub string) (*ecdsa.PrivateKey, string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://idp.test", "aud": "api", "sub": sub,
		"exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "Bearer " + signed
}
