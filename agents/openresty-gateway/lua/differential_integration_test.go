//go:build integration

package lua_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// corpus is tokens made in Go: valid ones for every algorithm and claim
// shape, and systematic mutations of them.
func corpus(t testing.TB, k *keys) []string {
	now := time.Now().Unix()
	var out []string
	shapes := []map[string]any{
		claims(),
		{"iss": issuer, "aud": []string{"x", audience}, "sub": "bob", "exp": now + 60},
		{"iss": issuer, "aud": []any{}, "sub": "bob", "exp": now + 60},
		{"iss": issuer, "aud": "", "sub": "bob", "exp": now + 60},
		{"iss": issuer, "aud": audience, "sub": "bob", "exp": float64(now) + 60.5, "nbf": float64(now) - 0.5},
		{"iss": issuer, "aud": audience, "sub": "bob", "exp": now - 5},                   // within the leeway
		{"iss": issuer, "aud": audience, "sub": "bob", "exp": now + 600, "nbf": now + 5}, // within the leeway
		{"iss": issuer, "aud": audience, "sub": "bob", "exp": 0},
		{"iss": issuer, "aud": audience, "sub": "bob", "exp": now + 600, "nbf": 0},
		{"iss": issuer, "aud": audience, "sub": "bob", "exp": now + 600, "nbf": -5},
		{"iss": issuer, "aud": audience, "sub": 7, "exp": now + 600},
		{"iss": issuer, "aud": audience, "sub": "", "exp": now + 600},
		{"iss": issuer, "aud": audience, "sub": "bob", "exp": true},
		{"iss": issuer, "aud": audience, "sub": "bob", "exp": now + 600, "nbf": "0"},
		{"iss": []string{issuer}, "aud": audience, "sub": "bob", "exp": now + 600},
		{"iss": issuer, "aud": map[string]any{}, "sub": "bob", "exp": now + 600},
		{"iss": issuer, "aud": audience, "sub": "bob", "exp": now + 600, "groups": []string{"a"}, "scope": "x y"},
	}
	for _, alg := range []string{"RS256", "RS384", "RS512", "ES256", "ES384", "HS256"} {
		for _, c := range shapes {
			out = append(out, k.token(t, alg, c, nil))
		}
		base := k.token(t, alg, claims(), nil)
		out = append(out, mutations(base)...)
		for _, h := range []map[string]any{{"kid": nil}, {"kid": "nope"}, {"typ": "at+jwt"}, {"alg": strings.ToLower(alg)}} {
			out = append(out, k.token(t, alg, claims(), h))
		}
	}
	return out
}

// mutations change one thing in a token: a character of each segment,
// the segments' order, a segment dropped or repeated.
func mutations(tok string) []string {
	p := strings.Split(tok, ".")
	out := []string{p[1] + "." + p[0] + "." + p[2], p[0] + "." + p[1] + "." + p[2] + ".", p[0] + ".." + p[2], tok + "A"}
	for seg := 0; seg < 3; seg++ {
		for _, i := range []int{0, len(p[seg]) / 2, len(p[seg]) - 1} {
			if i < 0 || i >= len(p[seg]) {
				continue
			}
			for _, c := range []byte{'A', 'B', '_', '-'} {
				q := append([]string(nil), p...)
				b := []byte(q[seg])
				if b[i] == c {
					continue
				}
				b[i] = c
				q[seg] = string(b)
				out = append(out, strings.Join(q, "."))
			}
		}
	}
	return out
}

// luaVerdict asks the gateway: accept (200) or reject (401); anything
// else fails the test.
func luaVerdict(t testing.TB, tok string) error {
	g, k := gateway(t)
	resp, _ := g.Do(t, "GET", "/orders/d", "Bearer "+tok, nil)
	switch resp.StatusCode {
	case 200:
		return nil
	case 401:
		return fmt.Errorf("401")
	case 400, 431:
		// nginx's own refusal of a header beyond its buffers, which
		// are sized above the token limit.
		if len(tok) > k.policy.MaxTokenBytes {
			return fmt.Errorf("%d", resp.StatusCode)
		}
	}
	t.Fatalf("token %q: status %d, want 200 or 401", tok, resp.StatusCode)
	return nil
}

// TestDifferential: the Lua verifier and golang-jwt (plus the documented
// extra rules) agree on every token of the corpus.
func TestDifferential(t *testing.T) {
	_, k := gateway(t)
	accepted := 0
	for _, tok := range corpus(t, k) {
		want := k.oracle(tok)
		got := luaVerdict(t, tok)
		if (want == nil) != (got == nil) {
			t.Errorf("token %s\nLua: %s, golang-jwt: %s", tok, verdict(got), verdict(want))
		}
		if want == nil {
			accepted++
		}
	}
	// The corpus must exercise both verdicts, or it proves nothing.
	if accepted < 30 {
		t.Errorf("only %d tokens of the corpus are valid; the corpus is broken", accepted)
	}
}

// FuzzDifferential mutates tokens of the corpus; the two verdicts must
// agree. Inputs that cannot travel in an HTTP header are skipped.
func FuzzDifferential(f *testing.F) {
	_, k := gateway(f)
	for _, tok := range corpus(f, k) {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == "" || strings.IndexFunc(tok, func(r rune) bool { return r <= 0x20 || r >= 0x7f }) >= 0 {
			t.Skip()
		}
		want := k.oracle(tok)
		got := luaVerdict(t, tok)
		if (want == nil) != (got == nil) {
			t.Errorf("token %s\nLua: %s, golang-jwt: %s", tok, verdict(got), verdict(want))
		}
	})
}

// FuzzDifferentialClaims signs arbitrary claims texts with a valid key, so
// that the claims parsers and checks (strict JSON, types, dates, audience,
// subject) decide, not the signature; the two verdicts must agree.
func FuzzDifferentialClaims(f *testing.F) {
	_, k := gateway(f)
	now := time.Now().Unix()
	for _, c := range []string{
		fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"a","exp":%d}`, issuer, audience, now+600),
		fmt.Sprintf(`{"iss":%q,"aud":[%q,"x"],"sub":"a","exp":%d.5,"nbf":%d}`, issuer, audience, now+600, now-10),
		fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"a\u00e9","exp":%d,"groups":["g"],"x":{"y":[1,2e3,null,true]}}`, issuer, audience, now+600),
		fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"a","exp":%d,"sub":"b"}`, issuer, audience, now+600),
	} {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		tok := k.raw(t, "HS256", `{"alg":"HS256","kid":"hs1"}`, string(payload))
		if len(tok) > 3*k.policy.MaxTokenBytes {
			t.Skip()
		}
		want := k.oracle(tok)
		got := luaVerdict(t, tok)
		if (want == nil) != (got == nil) {
			t.Errorf("claims %q\nLua: %s, golang-jwt: %s", payload, verdict(got), verdict(want))
		}
	})
}
