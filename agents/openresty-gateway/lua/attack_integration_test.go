//go:build integration

package lua_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxconf"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxtest"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/routes"
)

// One nginx serves every verifier test of this binary: starting it costs
// more than all the requests.
var (
	shared     *nginxtest.Gateway
	sharedKeys *keys
	sharedOnce sync.Once
)

func gateway(t testing.TB) (*nginxtest.Gateway, *keys) {
	t.Helper()
	sharedOnce.Do(func() {
		sharedKeys = newKeys(t)
		up := nginxtest.NewEcho(cleanupLater{t})
		shared = nginxtest.Start(cleanupLater{t}, nginxconf.Settings{
			Routes:     []routes.Route{{Prefix: "/orders/", Service: "orders", Upstream: up.URL}},
			TokenCache: true, LogLevel: "info", MaxTokenBytes: sharedKeys.policy.MaxTokenBytes, ClaimHeaders: testClaimHeaders,
		}, sharedKeys.state(t, map[string]*acl.Document{"orders": allowAll(t)}))
	})
	if shared == nil {
		t.Fatal("the shared gateway did not start")
	}
	return shared, sharedKeys
}

// cleanupLater defers the shared gateway's cleanup to the end of the test
// binary (TestMain), not of the first test that used it.
type cleanupLater struct{ testing.TB }

var cleanups []func()

func (cleanupLater) Cleanup(f func()) { cleanups = append(cleanups, f) }

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.Exit(code)
}

func TestValidTokensPass(t *testing.T) {
	g, k := gateway(t)
	for _, alg := range []string{"RS256", "RS384", "RS512", "ES256", "ES384", "HS256"} {
		t.Run(alg, func(t *testing.T) {
			tok := k.token(t, alg, claims(), nil)
			resp, seen := g.Do(t, "GET", "/orders/42", "Bearer "+tok, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200 (oracle: %s)\n%s", resp.StatusCode, verdict(k.oracle(tok)), g.LogTail())
			}
			if got := seen.Header.Get("X-Auth-Subject"); got != "alice" {
				t.Errorf("upstream saw X-Auth-Subject %q, want alice", got)
			}
			if got := seen.Header.Get("X-Auth-Issuer"); got != issuer {
				t.Errorf("upstream saw X-Auth-Issuer %q, want %s", got, issuer)
			}
		})
	}
	// The token without kid: the issuer's only key of the kind is used.
	tok := k.token(t, "ES384", claims(), map[string]any{"kid": nil})
	if resp, _ := g.Do(t, "GET", "/orders/", "Bearer "+tok, nil); resp.StatusCode != 200 {
		t.Errorf("ES384 without kid: status %d, want 200", resp.StatusCode)
	}
}

// TestAttacks sends hostile tokens: every one must get 401 with a
// WWW-Authenticate challenge, and golang-jwt must agree it is invalid.
func TestAttacks(t *testing.T) {
	g, k := gateway(t)
	now := time.Now().Unix()
	with := func(kv ...any) map[string]any {
		c := claims()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	valid := k.token(t, "RS256", claims(), nil)
	vp := strings.Split(valid, ".")
	payload := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","exp":%d}`, issuer, audience, now+600)

	type attack struct {
		name  string
		token string
	}
	var attacks []attack
	for _, none := range []string{"none", "None", "NONE", "nOnE"} {
		attacks = append(attacks,
			attack{"alg " + none + " empty signature", k.raw(t, "", fmt.Sprintf(`{"alg":%q,"typ":"JWT"}`, none), payload)},
			attack{"alg " + none + " with the RS256 signature", b64(fmt.Sprintf(`{"alg":%q}`, none)) + "." + vp[1] + "." + vp[2]})
	}
	// RS/HS confusion: HS256 with the RSA public key (PEM, and DER) as
	// the HMAC secret, under the RSA key's kid and under none.
	for _, secret := range [][]byte{k.rsaPEM, []byte(strings.TrimSpace(string(k.rsaPEM)))} {
		for _, kid := range []string{"rsa1", ""} {
			h := `{"alg":"HS256","typ":"JWT"}`
			if kid != "" {
				h = fmt.Sprintf(`{"alg":"HS256","kid":%q}`, kid)
			}
			input := b64(h) + "." + b64(payload)
			sig, _ := jwtSign("HS256", input, secret)
			attacks = append(attacks, attack{"HS256 keyed with the RSA public key, kid " + kid, input + "." + sig})
		}
	}
	for _, kid := range []string{"../../../../dev/null", "/dev/null", "' OR '1'='1", "rsa1' --", "rsa1\x00", "../rsa1", "RSA1", ""} {
		attacks = append(attacks, attack{"kid " + kid, k.token(t, "RS256", claims(), map[string]any{"kid": kid})})
	}
	attacks = append(attacks, attack{"kid null", k.raw(t, "RS256", `{"alg":"RS256","kid":null}`, payload)},
		attack{"kid number", k.raw(t, "RS256", `{"alg":"RS256","kid":1}`, payload)})
	// Embedded keys: the attacker's own key in the header, the token
	// signed with it; and remote key URLs.
	attackerKeys := newKeys(t)
	jwk := map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(attackerKeys.rsa.N.Bytes()), "e": "AQAB", "kid": "rsa1"}
	for _, h := range []map[string]any{
		{"jwk": jwk}, {"jku": "http://127.0.0.1:1/jwks.json"}, {"x5u": "http://127.0.0.1:1/cert.pem"},
		{"x5c": []string{base64.StdEncoding.EncodeToString([]byte("not a certificate"))}},
	} {
		for name := range h {
			attacks = append(attacks, attack{"embedded " + name, attackerKeys.token(t, "RS256", claims(), h)})
		}
	}
	attacks = append(attacks,
		attack{"crit header", k.token(t, "RS256", claims(), map[string]any{"crit": []string{"exp"}})},
		attack{"expired", k.token(t, "RS256", with("exp", now-120), nil)},
		attack{"expired beyond the leeway by a second", k.token(t, "ES256", with("exp", now-int64(leeway/time.Second)-2), nil)},
		attack{"missing exp", k.token(t, "RS256", with("exp", nil), nil)},
		attack{"exp as string", k.token(t, "RS256", with("exp", fmt.Sprint(now+600)), nil)},
		attack{"exp null", k.raw(t, "RS256", `{"alg":"RS256"}`, fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"a","exp":null}`, issuer, audience))},
		attack{"exp beyond year 2286", k.token(t, "RS256", with("exp", 1e12), nil)},
		attack{"nbf in the future", k.token(t, "RS256", with("nbf", now+300), nil)},
		attack{"wrong iss", k.token(t, "RS256", with("iss", "https://evil.test"), nil)},
		attack{"iss with trailing slash", k.token(t, "RS256", with("iss", issuer+"/"), nil)},
		attack{"missing iss", k.token(t, "RS256", with("iss", nil), nil)},
		attack{"wrong aud", k.token(t, "RS256", with("aud", "billing-api"), nil)},
		attack{"aud list without ours", k.token(t, "RS256", with("aud", []string{"a", "b"}), nil)},
		attack{"aud list with a number", k.token(t, "RS256", with("aud", []any{audience, 1}), nil)},
		attack{"missing aud", k.token(t, "RS256", with("aud", nil), nil)},
		attack{"missing sub", k.token(t, "RS256", with("sub", nil), nil)},
		attack{"sub with a newline", k.token(t, "RS256", with("sub", "alice\r\nX-Auth-Subject: root"), nil)},
		attack{"empty signature", vp[0] + "." + vp[1] + "."},
		attack{"null signature", vp[0] + "." + vp[1] + "." + b64("null")},
		attack{"zero signature", vp[0] + "." + vp[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 256))},
		attack{"ES256 zero signature", k.raw(t, "", `{"alg":"ES256","kid":"ec256"}`, payload) + base64.RawURLEncoding.EncodeToString(make([]byte, 64))},
		attack{"ES256 DER signature", esDER(t, k, payload)},
		attack{"padded base64", vp[0] + "=." + vp[1] + "." + vp[2]},
		attack{"standard base64 alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(valid)},
		attack{"non-canonical trailing bits", nonCanonical(vp[0]) + "." + vp[1] + "." + vp[2]},
		attack{"5-part JWE shape", vp[0] + "." + vp[1] + "." + vp[2] + "." + vp[2] + "." + vp[2]},
		attack{"JWE header", b64(`{"alg":"RSA-OAEP","enc":"A256GCM"}`) + ".AAAA.AAAA.AAAA.AAAA"},
		attack{"two parts", vp[0] + "." + vp[1]},
		attack{"duplicate alg", k.raw(t, "RS256", `{"alg":"RS256","alg":"none"}`, payload)},
		attack{"duplicate sub", k.raw(t, "RS256", `{"alg":"RS256","kid":"rsa1"}`, fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","sub":"admin","exp":%d}`, issuer, audience, now+600))},
		attack{"duplicate escaped key", k.raw(t, "RS256", `{"alg":"RS256","kid":"rsa1"}`, fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","s\u0075b":"admin","exp":%d}`, issuer, audience, now+600))},
		attack{"trailing data after claims", k.raw(t, "RS256", `{"alg":"RS256","kid":"rsa1"}`, payload+`{}`)},
		attack{"header is an array", k.raw(t, "RS256", `["RS256"]`, payload)},
		attack{"oversized", k.token(t, "RS256", with("pad", strings.Repeat("x", 5000)), nil)},
		attack{"signature of another token", vp[0] + "." + b64(strings.Replace(payload, "alice", "admin", 1)) + "." + vp[2]},
	)
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			if err := k.oracle(a.token); err == nil {
				t.Fatalf("golang-jwt accepts the attack token; the test is wrong")
			}
			resp, _ := g.Do(t, "GET", "/orders/1", "Bearer "+a.token, nil)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="gateway", error="invalid_token"`) {
				t.Errorf("WWW-Authenticate %q, want an invalid_token Bearer challenge", got)
			}
		})
	}
}

func TestMissingOrMalformedAuthorization(t *testing.T) {
	g, k := gateway(t)
	tok := k.token(t, "RS256", claims(), nil)
	for _, auth := range []string{"", "Basic YWxpY2U6cHc=", "Bearer", "Bearer  " + tok, tok, "Bearer " + tok + " extra"} {
		resp, _ := g.Do(t, "GET", "/orders/1", auth, nil)
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("Authorization %.20q: status %d, challenge %q; want 401 with a Bearer challenge", auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// Two Authorization headers: one valid, one not.
	req, _ := http.NewRequest("GET", g.Base+"/orders/1", nil)
	req.Header.Add("Authorization", "Bearer "+tok)
	req.Header.Add("Authorization", "Bearer x")
	resp, err := g.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 && resp.StatusCode != 400 {
		t.Errorf("two Authorization headers: status %d, want 401 (or nginx's own 400)", resp.StatusCode)
	}
}

// TestForgedIdentityHeaders: whatever identity headers the client sends,
// the upstream sees only the verified ones.
func TestForgedIdentityHeaders(t *testing.T) {
	g, k := gateway(t)
	tok := k.token(t, "RS256", claims(), nil)
	resp, seen := g.Do(t, "GET", "/orders/1", "Bearer "+tok, map[string]string{
		"X-Auth-Subject": "root", "x-auth-issuer": "https://evil.test", "X-Auth-Groups": "admin", "X-AUTH-SUBJECT": "root", "X_Auth_Subject": "root",
	})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	if got := seen.Header.Values("X-Auth-Subject"); len(got) != 1 || got[0] != "alice" {
		t.Errorf("upstream saw X-Auth-Subject %q, want only alice", got)
	}
	if got := seen.Header.Values("X-Auth-Issuer"); len(got) != 1 || got[0] != issuer {
		t.Errorf("upstream saw X-Auth-Issuer %q, want only %s", got, issuer)
	}
	if got := seen.Header.Values("X_Auth_Subject"); len(got) != 0 {
		t.Errorf("upstream saw the client's X_Auth_Subject %q", got)
	}
	if got := seen.Header.Values("X-Auth-Groups"); len(got) != 0 {
		t.Errorf("upstream saw the client's X-Auth-Groups %q", got)
	}
	// Without a valid token the forged headers never reach the upstream.
	if resp, _ := g.Do(t, "GET", "/orders/1", "", map[string]string{"X-Auth-Subject": "root"}); resp.StatusCode != 401 {
		t.Errorf("forged subject without a token: status %d, want 401", resp.StatusCode)
	}
}

func TestNonNormalizedPathsRefused(t *testing.T) {
	g, k := gateway(t)
	tok := k.token(t, "RS256", claims(), nil)
	for _, p := range []string{"/orders/x/..%2Fy", "/orders/x/%2e%2e/y", "/orders//x", "/orders/a/../b", "/orders/a%5Cb", "/orders/a%2Fb"} {
		resp, _ := g.Do(t, "GET", p, "Bearer "+tok, nil)
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", p, resp.StatusCode)
		}
	}
	// An escape that decodes to the normalized path itself is no trick.
	if resp, _ := g.Do(t, "GET", "/orders/%61", "Bearer "+tok, nil); resp.StatusCode != 200 {
		t.Errorf("/orders/%%61: status %d, want 200", resp.StatusCode)
	}
	if resp, _ := g.Do(t, "GET", "/nowhere", "Bearer "+tok, nil); resp.StatusCode != 404 {
		t.Errorf("unrouted path: status %d, want 404", resp.StatusCode)
	}
}
