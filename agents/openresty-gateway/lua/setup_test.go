package lua_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/state"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/strictjson"
)

const (
	issuer   = "https://idp.test"
	audience = "orders-api"
	leeway   = 30 * time.Second
)

// keys are the test issuer's keys, made fresh by every test binary.
type keys struct {
	rsa    *rsa.PrivateKey
	rsaPEM []byte // public, PKIX
	ec256  *ecdsa.PrivateKey
	ec384  *ecdsa.PrivateKey
	hmac   []byte
	policy *policy.Compiled
	file   *policy.File
}

func newKeys(t testing.TB) *keys {
	t.Helper()
	dir := t.TempDir()
	k := &keys{}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	k.ec256, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k.ec384, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	k.hmac = []byte(strings.Repeat("s3cr3t-", 6))
	writePub := func(name string, pub any) string {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		p := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if name == "rsa.pem" {
			k.rsaPEM = p
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, p, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	secret := filepath.Join(dir, "hs.secret")
	if err := os.WriteFile(secret, k.hmac, 0o600); err != nil {
		t.Fatal(err)
	}
	k.file = &policy.File{MaxTokenBytes: 4096, Issuers: []policy.Issuer{{
		Issuer: issuer, Audiences: []string{audience, "other-api"},
		Algorithms: []string{"RS256", "RS384", "RS512", "ES256", "ES384", "HS256"}, Leeway: leeway.String(),
		Keys: []policy.Key{
			{KID: "rsa1", File: writePub("rsa.pem", &k.rsa.PublicKey)},
			{KID: "ec256", File: writePub("ec256.pem", &k.ec256.PublicKey)},
			{KID: "ec384", File: writePub("ec384.pem", &k.ec384.PublicKey)},
			{KID: "hs1", SecretFile: secret},
		},
	}}}
	data, _ := json.Marshal(k.file)
	f, err := policy.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if k.policy, err = policy.Load(f); err != nil {
		t.Fatal(err)
	}
	return k
}

// allowAll is an ACL that lets every verified subject through, so that a
// test of the verifier sees 200 exactly when the token is accepted.
func allowAll(t testing.TB) *acl.Document {
	d, err := acl.Parse([]byte(`{"version": 1, "rules": [{"name": "all", "action": "allow"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (k *keys) state(t testing.TB, acls map[string]*acl.Document) *state.State {
	s, err := state.New(k.policy, acls)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signingKey returns the private key for alg.
func (k *keys) signingKey(alg string) any {
	switch alg[:2] {
	case "RS":
		return k.rsa
	case "HS":
		return k.hmac
	}
	if alg == "ES384" {
		return k.ec384
	}
	return k.ec256
}

var kidOf = map[string]string{"RS": "rsa1", "HS": "hs1", "ES256": "ec256", "ES384": "ec384"}

func (k *keys) kid(alg string) string {
	if v, ok := kidOf[alg]; ok {
		return v
	}
	return kidOf[alg[:2]]
}

// claims are valid claims for now.
func claims() map[string]any {
	now := time.Now().Unix()
	return map[string]any{"iss": issuer, "aud": audience, "sub": "alice", "exp": now + 600, "nbf": now - 60, "iat": now - 60}
}

// token signs claims with alg and the matching key; header entries in
// extra are added (nil values removed).
func (k *keys) token(t testing.TB, alg string, c map[string]any, extra map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), jwt.MapClaims(c))
	tok.Header["kid"] = k.kid(alg)
	for h, v := range extra {
		if v == nil {
			delete(tok.Header, h)
		} else {
			tok.Header[h] = v
		}
	}
	s, err := tok.SignedString(k.signingKey(alg))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// raw builds a token from literal header and claims texts, signed with
// alg (or with an empty signature when alg is "").
func (k *keys) raw(t testing.TB, alg, header, payload string) string {
	t.Helper()
	input := b64(header) + "." + b64(payload)
	if alg == "" {
		return input + "."
	}
	sig, err := jwt.GetSigningMethod(alg).Sign(input, k.signingKey(alg))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// oracle is golang-jwt v5's verdict under the same policy, with the
// gateway's documented additions golang-jwt has no option for: strict
// JSON (duplicate keys, invalid UTF-8), crit refused, the size limit,
// dates within [0, 1e10), and a printable sub.
func (k *keys) oracle(token string) error {
	if len(token) > k.policy.MaxTokenBytes {
		return errors.New("too large")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("not three parts")
	}
	var hdr, pay map[string]any
	for i, p := range parts {
		if strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return errors.New("alphabet")
		}
		if i == 2 {
			break
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil {
			return err
		}
		if err := strictjson.CheckObject(b); err != nil {
			return err
		}
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		if i == 0 {
			hdr = m
		} else {
			pay = m
		}
	}
	if _, ok := hdr["crit"]; ok {
		return errors.New("crit")
	}
	for _, c := range []string{"exp", "nbf"} {
		if f, ok := pay[c].(float64); ok && (f < 0 || f >= 1e10) {
			return errors.New("date out of range")
		}
	}
	sub, ok := pay["sub"].(string)
	if !ok || sub == "" || len(sub) > 256 || strings.IndexFunc(sub, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return errors.New("sub")
	}
	iss, _ := pay["iss"].(string)
	var ip *policy.CompiledIssuer
	for i := range k.policy.Issuers {
		if k.policy.Issuers[i].Issuer == iss {
			ip = &k.policy.Issuers[i]
		}
	}
	if ip == nil {
		return errors.New("issuer")
	}
	p := jwt.NewParser(jwt.WithValidMethods(ip.Algorithms), jwt.WithIssuer(iss), jwt.WithAudience(ip.Audiences...),
		jwt.WithExpirationRequired(), jwt.WithLeeway(time.Duration(ip.Leeway)*time.Second), jwt.WithStrictDecoding())
	_, err := p.Parse(token, func(t *jwt.Token) (any, error) {
		kind := policy.Algorithms[t.Method.Alg()]
		kidv, has := t.Header["kid"]
		kid, isString := kidv.(string)
		if has && !isString {
			return nil, errors.New("kid not a string")
		}
		var found *policy.CompiledKey
		for i, key := range ip.Keys {
			if key.Kind != kind || (has && key.KID != kid) {
				continue
			}
			if found != nil {
				return nil, errors.New("several keys")
			}
			found = &ip.Keys[i]
		}
		if found == nil {
			return nil, errors.New("no key")
		}
		if kind == policy.KindHMAC {
			return found.Secret, nil
		}
		return policy.ParsePEM([]byte(found.PEM))
	})
	return err
}

func verdict(err error) string {
	if err == nil {
		return "accept"
	}
	return fmt.Sprintf("reject (%v)", err)
}
