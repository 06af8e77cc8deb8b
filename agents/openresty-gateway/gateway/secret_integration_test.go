//go:build integration

package gateway

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// The gateway's secrets (the Consul token of token_file, an HMAC key of
// the JWT policy, the TLS private key) never show in nginx's or the
// companion's argv or environment, in the agent's output or logs, or in
// a state file others may read; the HMAC key still verifies tokens.
func TestSecretsStaySecret(t *testing.T) {
	f := newFixture(t, 90*24*time.Hour)
	dir := t.TempDir()
	const token = "9e1b7c2a-hafw-gateway-consul-token-secret"
	const hmacKey = "hafw-gateway-hmac-secret-0123456789abcdef0123456789"
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f.params["token_file"] = write("token", token+"\n")
	// The fixture's policy, with an HMAC issuer beside it.
	var pol policy.File
	data, err := os.ReadFile(f.params["jwt_policy_file"])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &pol); err != nil {
		t.Fatal(err)
	}
	pol.Issuers = append(pol.Issuers, policy.Issuer{Issuer: "https://hmac.test", Audiences: []string{"api"},
		Algorithms: []string{"HS256"}, Keys: []policy.Key{{KID: "h1", SecretFile: write("hmac", hmacKey)}}})
	data, _ = json.Marshal(pol)
	f.params["jwt_policy_file"] = write("policy.json", string(data))
	// The TLS key's first line of base64: any copy of the key holds it.
	keyPEM, err := os.ReadFile(f.params["tls_key_file"])
	if err != nil {
		t.Fatal(err)
	}
	keyLine := strings.Split(string(keyPEM), "\n")[1]

	r := f.runner(t)
	logs := filepath.Join(dir, "ha.log")
	results := []ocftest.Result{r.Run(ocf.ActionStart, map[string]string{"HA_LOGFILE": logs, "HA_debug": "1"})}
	if results[0].Code != ocf.Success {
		t.Fatalf("start: %v %q\n%s", results[0].Code, results[0].Reason, results[0].Stderr)
	}
	f.put(t, "acl/orders", `{"version": 1, "rules": [{"action": "allow", "subjects": ["carol"]}]}`)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "https://hmac.test", "aud": "api", "sub": "carol",
		"exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "h1"
	signed, err := tok.SignedString([]byte(hmacKey))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a token signed with the HMAC key served", func() bool { return f.get(t, "/orders/1", "Bearer "+signed) == 200 })
	results = append(results, r.Run(ocf.ActionMonitor, deep))
	if results[1].Code != ocf.Success {
		t.Errorf("deep monitor: %v %q", results[1].Code, results[1].Reason)
	}
	priv := filepath.Join(f.params["state_dir"], "private")
	stateLogs, _ := filepath.Glob(filepath.Join(priv, "*.log"))
	stateLogs = append(stateLogs, filepath.Join(priv, "nginx.out"))
	if len(stateLogs) == 0 {
		t.Errorf("no log file in %s: the test would not look at nginx's and the companion's logs", priv)
	}
	for name, secret := range map[string]string{"Consul token": token, "HMAC key": hmacKey, "TLS key": keyLine} {
		for _, where := range ocftest.SecretExposures(secret, results, append(stateLogs, logs), []string{f.params["state_dir"], f.env["HA_RSCTMP"]}) {
			t.Errorf("the %s shows in %s", name, where)
		}
	}
}
