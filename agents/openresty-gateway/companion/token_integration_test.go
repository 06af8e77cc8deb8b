//go:build integration

package companion_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/companion"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxconf"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxtest"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/routes"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// TestCompanionTokenRefused runs the companion against a Consul with
// ACLs (default deny). A token without key:read on the ACL prefix gets
// no refusal from Consul but an answer with the documents filtered out:
// the old companion took them for deleted, so the service was denied
// (every caller got 403) and the monitor reported nothing. Hidden is not
// deleted: the ACL in force stays and the status names what the token
// may not read. A token Consul does not know is refused with 403, which
// the status marks as a refusal, not an outage.
func TestCompanionTokenRefused(t *testing.T) {
	cl, admin := consultest.StartACLServer(t)
	reader := consultest.Token(t, admin, "gateway-reader", `key_prefix "acl/" { policy = "read" }`)
	blind := consultest.Token(t, admin, "gateway-blind", `node_prefix "" { policy = "read" }`)
	if _, err := admin.KV().Put(&api.KVPair{Key: "acl/orders", Value: []byte(`{"version": 1, "rules": [{"action": "allow", "subjects": ["alice"]}]}`)}, nil); err != nil {
		t.Fatal(err)
	}

	up := nginxtest.NewEcho(t)
	g := nginxtest.Start(t, nginxconf.Settings{Routes: []routes.Route{{Prefix: "/", Service: "orders", Upstream: up.URL}}}, nil)
	pf, sign := writePolicy(t, t.TempDir())
	priv := g.Settings.PrivateDir
	tokenFile := filepath.Join(t.TempDir(), "consul.token")
	useToken := func(tok string) {
		t.Helper()
		if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &companion.Config{PolicyFile: pf, ConsulAddress: cl.HTTPAddr(0), TokenFile: tokenFile, KVPrefix: "acl/", Services: []string{"orders"},
		StateFile: filepath.Join(priv, nginxconf.StateFile), StatusFile: filepath.Join(priv, "companion-status.json"),
		Socket: g.Admin.Socket, Wait: 5 * time.Second, Tick: 200 * time.Millisecond}
	alice := sign("alice")
	code := func() int { r, _ := g.Do(t, "GET", "/x", alice, nil); return r.StatusCode }
	// status waits for a status that ok accepts.
	status := func(what string, ok func(*companion.Status) bool) *companion.Status {
		t.Helper()
		var st *companion.Status
		eventually(t, 15*time.Second, what, func() bool {
			var err error
			st, err = companion.ReadStatus(cfg.StatusFile)
			return err == nil && ok(st)
		})
		return st
	}

	useToken(reader)
	comp := startCompanion(t, cfg)
	eventually(t, 10*time.Second, "ACL allowing alice enforced", func() bool { return code() == 200 })
	comp.stop()

	// The token loses key:read: Consul answers, hiding the document.
	useToken(blind)
	comp = startCompanion(t, cfg)
	st := status("hidden document reported", func(st *companion.Status) bool { return len(st.Hidden) > 0 })
	if !slices.Equal(st.Hidden, []string{"acl/orders"}) || st.ConsulError != "" {
		t.Errorf("status hidden %v, Consul error %q; want acl/orders hidden and no error", st.Hidden, st.ConsulError)
	}
	if c := code(); c != 200 {
		t.Errorf("with a token that may not read acl/orders alice gets %d, want 200 (the ACL in force stays)", c)
	}
	if _, ok := st.ACLs["orders"]; !ok {
		t.Errorf("status ACLs %v, want orders still in force", st.ACLs)
	}
	comp.stop()

	// A token Consul does not know: 403, a refusal, not an outage.
	useToken("0b7e2a44-1c55-4a8e-8a5d-3f3c2b1a0e99")
	comp = startCompanion(t, cfg)
	st = status("refusal reported", func(st *companion.Status) bool { return st.ConsulError != "" })
	if !st.ConsulRefused || !strings.HasPrefix(st.ConsulError, "403 ") {
		t.Errorf("status Consul error %q, refused %v; want a 403 marked refused", st.ConsulError, st.ConsulRefused)
	}
	if c := code(); c != 200 {
		t.Errorf("with a token Consul refuses alice gets %d, want 200 (the ACL in force stays)", c)
	}
	comp.stop()

	// Back to a token that may read: nothing left to report.
	useToken(reader)
	startCompanion(t, cfg)
	status("a clean status", func(st *companion.Status) bool {
		return st.ConsulError == "" && len(st.Hidden) == 0 && !st.ConsulRefused
	})
}
