//go:build integration

package companion_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/companion"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxconf"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxtest"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/routes"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// BenchmarkACLPropagation measures how long an ACL change written to
// Consul takes to be enforced by nginx (the first request that sees the
// new verdict, polled every millisecond), over 30 changes; it reports the
// median and the 99th percentile (the largest of 30).
func BenchmarkACLPropagation(b *testing.B) {
	cl := consultest.StartServer(b, &consultest.Options{Dev: true})
	kv, err := api.NewClient(&api.Config{Address: cl.HTTPAddr(0)})
	if err != nil {
		b.Fatal(err)
	}
	up := nginxtest.NewEcho(b)
	g := nginxtest.Start(b, nginxconf.Settings{Routes: []routes.Route{{Prefix: "/", Service: "orders", Upstream: up.URL}}}, nil)
	pf, sign := writePolicy(b, b.TempDir())
	priv := g.Settings.PrivateDir
	cfg := &companion.Config{PolicyFile: pf, ConsulAddress: cl.HTTPAddr(0), KVPrefix: "acl/", Services: []string{"orders"},
		StateFile: filepath.Join(priv, nginxconf.StateFile), StatusFile: filepath.Join(priv, "status.json"),
		Socket: g.Admin.Socket, Wait: 30 * time.Second, Tick: 2 * time.Second}
	startCompanion(b, cfg)
	alice := sign("alice")
	code := func() int {
		c, _ := try(g, alice)
		return c
	}
	var ds []time.Duration
	for i := 0; i < 30; i++ {
		want, rule := 200, "allow"
		if i%2 == 1 {
			want, rule = 403, "deny"
		}
		doc := fmt.Sprintf(`{"version": %d, "rules": [{"action": %q, "subjects": ["alice"]}]}`, i+1, rule)
		start := time.Now()
		if _, err := kv.KV().Put(&api.KVPair{Key: "acl/orders", Value: []byte(doc)}, nil); err != nil {
			b.Fatal(err)
		}
		for code() != want {
			if time.Since(start) > 10*time.Second {
				b.Fatalf("change %d not enforced within 10s", i)
			}
			time.Sleep(time.Millisecond)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkKeyPropagation measures how long a JWT key put in Consul KV
// (or deleted from it) takes to verify (or stop verifying) tokens in
// nginx, polled every millisecond, over 30 changes alternating put and
// delete; it reports the median and the 99th percentile (the largest of
// 30).
func BenchmarkKeyPropagation(b *testing.B) {
	cl := consultest.StartServer(b, &consultest.Options{Dev: true})
	kv, err := api.NewClient(&api.Config{Address: cl.HTTPAddr(0)})
	if err != nil {
		b.Fatal(err)
	}
	up := nginxtest.NewEcho(b)
	g := nginxtest.Start(b, nginxconf.Settings{Routes: []routes.Route{{Prefix: "/", Service: "orders", Upstream: up.URL}}}, nil)
	pf, _ := writePolicy(b, b.TempDir())
	var f policy.File
	data, _ := os.ReadFile(pf)
	if err := json.Unmarshal(data, &f); err != nil {
		b.Fatal(err)
	}
	f.Issuers[0].KVKeys = "idp"
	data, _ = json.Marshal(f)
	if err := os.WriteFile(pf, data, 0o644); err != nil {
		b.Fatal(err)
	}
	if _, err := kv.KV().Put(&api.KVPair{Key: "acl/orders", Value: []byte(`{"version": 1, "rules": [{"action": "allow"}]}`)}, nil); err != nil {
		b.Fatal(err)
	}
	priv := g.Settings.PrivateDir
	cfg := &companion.Config{PolicyFile: pf, ConsulAddress: cl.HTTPAddr(0), KVPrefix: "acl/", KeysPrefix: "jwt/", Services: []string{"orders"},
		StateFile: filepath.Join(priv, nginxconf.StateFile), StatusFile: filepath.Join(priv, "status.json"),
		Socket: g.Admin.Socket, Wait: 30 * time.Second, Tick: 2 * time.Second}
	startCompanion(b, cfg)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	doc := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://idp.test", "aud": "api", "sub": "carol",
		"exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "kv1"
	signed, err := tok.SignedString(key)
	if err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	for i := 0; i < 30; i++ {
		start := time.Now()
		want := 200
		if i%2 == 0 {
			_, err = kv.KV().Put(&api.KVPair{Key: "jwt/idp/keys/kv1", Value: doc}, nil)
		} else {
			want = 401
			_, err = kv.KV().Delete("jwt/idp/keys/kv1", nil)
		}
		if err != nil {
			b.Fatal(err)
		}
		for {
			if c, _ := try(g, "Bearer "+signed); c == want {
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatalf("change %d not enforced within 10s", i)
			}
			time.Sleep(time.Millisecond)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
