//go:build integration

package companion_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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

// writePolicy makes an ES256 issuer with a fresh key and returns the
// policy file and a token signer.
func writePolicy(t testing.TB, dir string) (string, func(sub string) string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := filepath.Join(dir, "idp.pem")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	f := policy.File{Issuers: []policy.Issuer{{Issuer: "https://idp.test", Audiences: []string{"api"}, Algorithms: []string{"ES256"},
		Keys: []policy.Key{{KID: "k1", File: pub}}}}}
	data, _ := json.Marshal(f)
	pf := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(pf, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return pf, func(sub string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://idp.test", "aud": "api", "sub": sub,
			"exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + s
	}
}

type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startCompanion(t testing.TB, c *companion.Config) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := companion.Run(ctx, c, slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
			t.Errorf("companion: %v", err)
		}
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	r.cancel()
	<-r.done
}

// eventually polls f every 20ms for at most limit.
func eventually(t *testing.T, limit time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !f() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func TestCompanionFollowsConsul(t *testing.T) {
	cl := consultest.StartServer(t, &consultest.Options{Dev: true})
	kv, err := api.NewClient(&api.Config{Address: cl.HTTPAddr(0)})
	if err != nil {
		t.Fatal(err)
	}
	up := nginxtest.NewEcho(t)
	g := nginxtest.Start(t, nginxconf.Settings{Routes: []routes.Route{{Prefix: "/", Service: "orders", Upstream: up.URL}}}, nil)
	pf, sign := writePolicy(t, t.TempDir())
	priv := g.Settings.PrivateDir
	cfg := &companion.Config{PolicyFile: pf, ConsulAddress: cl.HTTPAddr(0), KVPrefix: "acl/", Services: []string{"orders"},
		StateFile: filepath.Join(priv, nginxconf.StateFile), StatusFile: filepath.Join(priv, "companion-status.json"),
		Socket: g.Admin.Socket, Wait: 5 * time.Second, Tick: 200 * time.Millisecond}
	comp := startCompanion(t, cfg)
	alice := sign("alice")
	code := func() int { r, _ := g.Do(t, "GET", "/x", alice, nil); return r.StatusCode }

	// The policy is pushed at once; no ACL yet, so a valid token is denied.
	eventually(t, 5*time.Second, "policy pushed (valid token → 403)", func() bool { return code() == 403 })

	put := func(doc string) {
		t.Helper()
		if _, err := kv.KV().Put(&api.KVPair{Key: "acl/orders", Value: []byte(doc)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put(`{"version": 1, "rules": [{"action": "allow", "subjects": ["alice"]}]}`)
	d := eventually(t, 5*time.Second, "ACL allowing alice enforced", func() bool { return code() == 200 })
	t.Logf("ACL change in Consul enforced by nginx after %s", d.Round(time.Millisecond))

	// A document that fails validation is refused; the last good stays.
	put(`{"version": 2, "rules": [{"action": "allow", "subjects": ["alice"], "methods": ["get"]}]}`)
	eventually(t, 5*time.Second, "invalid document reported", func() bool {
		st, err := companion.ReadStatus(cfg.StatusFile)
		return err == nil && strings.Contains(st.Rejected["orders"], "method")
	})
	if c := code(); c != 200 {
		t.Errorf("after an invalid document alice gets %d, want 200 (the last good ACL)", c)
	}
	// A service that is not routed is ignored, whatever its document.
	if _, err := kv.KV().Put(&api.KVPair{Key: "acl/other", Value: []byte("not json")}, nil); err != nil {
		t.Fatal(err)
	}

	put(`{"version": 3, "rules": [{"action": "deny", "subjects": ["alice"]}, {"action": "allow"}]}`)
	eventually(t, 5*time.Second, "ACL denying alice enforced", func() bool { return code() == 403 })
	if r, _ := g.Do(t, "GET", "/x", sign("bob"), nil); r.StatusCode != 200 {
		t.Errorf("bob gets %d, want 200", r.StatusCode)
	}
	st, err := companion.ReadStatus(cfg.StatusFile)
	if err != nil || len(st.Rejected) != 0 || st.ConsulError != "" || st.PushError != "" {
		t.Errorf("status %+v, %v; want no rejection or error", st, err)
	}

	// Consul goes away: the ACL in force stays, the status says why.
	cl.Stop(0)
	eventually(t, 15*time.Second, "Consul outage reported", func() bool {
		st, err := companion.ReadStatus(cfg.StatusFile)
		return err == nil && st.ConsulError != ""
	})
	if c := code(); c != 403 {
		t.Errorf("during the outage alice gets %d, want 403", c)
	}

	// nginx and the companion restart during the outage: the persisted
	// state is enforced before the companion pushes anything.
	comp.stop()
	g.Restart(t)
	if c := code(); c != 403 {
		t.Errorf("after a restart during the outage alice gets %d, want 403 (persisted ACL)", c)
	}
	if r, _ := g.Do(t, "GET", "/x", sign("bob"), nil); r.StatusCode != 200 {
		t.Errorf("after a restart during the outage bob gets %d, want 200 (persisted ACL)", r.StatusCode)
	}
	startCompanion(t, cfg)
	eventually(t, 15*time.Second, "the new companion reports the outage", func() bool {
		st, err := companion.ReadStatus(cfg.StatusFile)
		return err == nil && st.ConsulError != "" && st.PID == os.Getpid() && len(st.ACLs) == 1
	})
	if r, _ := g.Do(t, "GET", "/x", sign("bob"), nil); r.StatusCode != 200 {
		t.Errorf("with the new companion bob gets %d, want 200", r.StatusCode)
	}
}

// try is one request through the gateway; a transport error is status 0.
func try(g *nginxtest.Gateway, auth string) (int, error) {
	req, _ := http.NewRequest("GET", g.Base+"/x", nil)
	req.Header.Set("Authorization", auth)
	resp, err := g.Client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
