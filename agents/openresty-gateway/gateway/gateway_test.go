package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/companion"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

func TestDeclaration(t *testing.T) {
	if err := New().CheckDeclaration(); err != nil {
		t.Fatal(err)
	}
}

// TestBadInput needs no nginx: every case fails before one would start.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert := write("cert.pem", "not a certificate", 0o644)
	key := write("key.pem", "key", 0o600)
	looseKey := write("loose.key", "key", 0o644)
	policyFile := write("policy.json", `{"issuers": []}`, 0o644)
	badRoutes := write("routes.json", `{"routes": [{"path": "/a", "service": "a", "upstream": "ftp://x:1"}]}`, 0o644)
	base := map[string]string{"routes": "/a/=a=127.0.0.1:8081", "tls_cert_file": cert, "tls_key_file": key,
		"jwt_policy_file": policyFile, "binary": "/bin/true", "state_dir": filepath.Join(dir, "state")}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	probe := map[string]string{"OCF_RESKEY_CRM_meta_interval": "0"}
	tests := []struct {
		name   string
		params map[string]string
		action string
		extra  map[string]string
		want   ocf.Code
		reason string
	}{
		{"no routes", with("routes", ""), ocf.ActionValidateAll, nil, ocf.Misconfigured, "set parameter routes"},
		{"malformed route", with("routes", "/a=a"), ocf.ActionValidateAll, nil, ocf.Misconfigured, "[HOST]/PATH=SERVICE=UPSTREAM"},
		{"route without slash", with("routes", "a=a=127.0.0.1:1"), ocf.ActionValidateAll, nil, ocf.Misconfigured, "path must begin with /"},
		{"route path injection", with("routes", "/a;return=a=127.0.0.1:1"), ocf.ActionValidateAll, nil, ocf.Misconfigured, "path must begin with / and hold only"},
		{"upstream with a path", with("routes", "/a/=a=http://127.0.0.1:1/x"), ocf.ActionValidateAll, nil, ocf.Misconfigured, "must have no path"},
		{"routes and routes_file", with("routes_file", badRoutes), ocf.ActionValidateAll, nil, ocf.Misconfigured, "exclude each other"},
		{"routes_file invalid", with("routes", "", "routes_file", badRoutes), ocf.ActionStart, nil, ocf.InvalidArgs, "scheme must be http or https"},
		{"routes_file missing", with("routes", "", "routes_file", "/nonexistent/r.json"), ocf.ActionStart, nil, ocf.NotInstalled, "create routes_file"},
		{"mtls without CA", with("routes", "/a/=a=127.0.0.1:1=mtls"), ocf.ActionValidateAll, nil, ocf.Misconfigured, "set client_ca_file"},
		{"no certificate parameter", with("tls_cert_file", ""), ocf.ActionValidateAll, nil, ocf.Misconfigured, "tls_cert_file"},
		{"certificate missing", with("tls_cert_file", "/nonexistent/c.pem"), ocf.ActionStart, nil, ocf.NotInstalled, "does not exist on this node"},
		{"certificate invalid", base, ocf.ActionStart, nil, ocf.InvalidArgs, "no PEM certificate"},
		{"key readable by others", with("tls_cert_file", testCert(t, dir), "tls_key_file", looseKey), ocf.ActionStart, nil, ocf.InvalidArgs, "chmod 600"},
		{"policy without issuers", with("tls_cert_file", testCert(t, dir)), ocf.ActionStart, nil, ocf.InvalidArgs, "no issuers"},
		{"listen not an address", with("listen", "localhost:443"), ocf.ActionValidateAll, nil, ocf.Misconfigured, "parameter listen"},
		{"header with a space", with("subject_header", "X Auth"), ocf.ActionValidateAll, nil, ocf.Misconfigured, "subject_header"},
		{"kv prefix absolute", with("kv_prefix", "/acl/"), ocf.ActionValidateAll, nil, ocf.Misconfigured, "kv_prefix"},
		{"keys prefix is the ACL prefix", with("jwt_kv_prefix", "acl/"), ocf.ActionValidateAll, nil, ocf.Misconfigured, "set jwt_kv_prefix"},
		{"claim header malformed", with("claim_headers", "email"), ocf.ActionValidateAll, nil, ocf.Misconfigured, "claim_headers"},
		{"claim header outside the prefix", with("claim_headers", "email=X-Email"), ocf.ActionValidateAll, nil, ocf.Misconfigured, "identity prefix"},
		{"EdDSA policy", with("tls_cert_file", testCert(t, dir), "jwt_policy_file", write("eddsa.json", `{"issuers": [{"issuer": "i", "audiences": ["a"], "algorithms": ["EdDSA"], "kv_keys": "i"}]}`, 0o644)), ocf.ActionStart, nil, ocf.InvalidArgs, "EdDSA is not supported"},
		{"binary missing", with("binary", "/nonexistent/nginx", "tls_cert_file", testCert(t, dir), "jwt_policy_file", goodPolicy(t, dir)), ocf.ActionStart, nil, ocf.NotInstalled, "binary"},
		{"binary missing, probe", with("binary", "/nonexistent/nginx"), ocf.ActionMonitor, probe, ocf.NotRunning, ""},
		{"binary missing, stop", with("binary", "/nonexistent/nginx"), ocf.ActionStop, nil, ocf.Success, ""},
		{"invalid routes, stop", with("routes", "nonsense"), ocf.ActionStop, nil, ocf.Success, ""},
		{"policy missing, stop", with("jwt_policy_file", "/nonexistent/p.json"), ocf.ActionStop, nil, ocf.Success, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "openresty-gateway", Params: tt.params,
				Env: map[string]string{"HA_RSCTMP": dir}})
			got := r.Run(tt.action, tt.extra)
			if got.Code != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Fatalf("%s = %v %q, want %v with a reason containing %q\n%s", tt.action, got.Code, got.Reason, tt.want, tt.reason, got.Stderr)
			}
			if len(got.Reason) > ocf.MaxReason || strings.Contains(got.Reason, "\n") {
				t.Errorf("reason too long or on several lines: %q", got.Reason)
			}
		})
	}
}

func TestStatusProblemNamesRefusedKeys(t *testing.T) {
	st := &companion.Status{RejectedKeys: map[string]string{"jwt/idp/keys/b": "RSA key of 1024 bits", "jwt/idp/keys/a": "the JWK holds a private key"}}
	err := statusProblem(&Config{}, st)
	if ocf.CodeOf(err) != ocf.Degraded || !strings.Contains(err.Error(), "JWT key refused, last good kept: jwt/idp/keys/a: the JWK holds a private key; jwt/idp/keys/b") {
		t.Errorf("statusProblem = %v, want degraded naming both keys in order", err)
	}
}

// TestStatusProblemTokenRefused: Consul refusing the token (403), or
// hiding documents from it, is not an outage: the reason says which
// token to fix first. The old monitor said "Consul unreachable" for a
// 403 and nothing for hidden documents.
func TestStatusProblemTokenRefused(t *testing.T) {
	withFile := &Config{TokenFile: "/etc/ha-framework/gw.token", KVPrefix: "acl/"}
	tests := []struct {
		name   string
		c      *Config
		st     *companion.Status
		reason string // the start of the reason
	}{
		{"403", withFile, &companion.Status{ConsulError: "403 ACL not found", ConsulRefused: true},
			"fix the token in token_file /etc/ha-framework/gw.token: Consul refuses it (403 ACL not found)"},
		{"403 without token_file", &Config{KVPrefix: "acl/"}, &companion.Status{ConsulError: "403 Permission denied", ConsulRefused: true},
			"set token_file (the anonymous token is used): Consul refuses it (403 Permission denied)"},
		{"hidden", withFile, &companion.Status{Hidden: []string{"acl/orders", "jwt/idp/keys/k1"}},
			"fix the token in token_file /etc/ha-framework/gw.token: it may not read acl/orders, jwt/idp/keys/k1 (key:read)"},
		{"outage", withFile, &companion.Status{ConsulError: "connection refused"},
			"Consul unreachable; the last good ACLs and keys stay in force: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := statusProblem(tt.c, tt.st)
			if ocf.CodeOf(err) != ocf.Degraded || !strings.HasPrefix(ocf.ReasonOf(err), tt.reason) {
				t.Errorf("statusProblem = %v %q, want degraded starting %q", ocf.CodeOf(err), ocf.ReasonOf(err), tt.reason)
			}
		})
	}
}

func TestCompareKeys(t *testing.T) {
	want := map[string]map[string]string{"https://idp": {"k1": "v1", "kv1": "v2"}}
	got := map[string]map[string]string{"https://idp": {"k1": "v1", "kv1": "v3", "old": "v0"}}
	d := compareKeys(want, got)
	for _, s := range []string{`key "kv1" of https://idp is version v3, want v2`, `key "old" of https://idp no longer configured`} {
		if !strings.Contains(d, s) {
			t.Errorf("compareKeys = %q, want it to contain %q", d, s)
		}
	}
	if d := compareKeys(want, map[string]map[string]string{}); !strings.Contains(d, `key "k1" of https://idp missing`) {
		t.Errorf("compareKeys with nothing in nginx = %q", d)
	}
	if d := compareKeys(want, want); d != "" {
		t.Errorf("compareKeys of equal sets = %q", d)
	}
}
