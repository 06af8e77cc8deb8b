package policy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writePub(t *testing.T, dir, name string, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ec521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	rsaPEM := writePub(t, dir, "rsa.pem", &rsaKey.PublicKey)
	jwkRSA := filepath.Join(dir, "rsa.jwk")
	os.WriteFile(jwkRSA, []byte(`{"kty":"RSA","n":"`+b64(rsaKey.N.Bytes())+`","e":"AQAB"}`), 0o644)
	jwkEC := filepath.Join(dir, "ec.jwk")
	os.WriteFile(jwkEC, []byte(`{"kty":"EC","crv":"P-384","x":"`+b64(ec.X.FillBytes(make([]byte, 48)))+`","y":"`+b64(ec.Y.FillBytes(make([]byte, 48)))+`"}`), 0o644)
	jwkPrivate := filepath.Join(dir, "private.jwk")
	os.WriteFile(jwkPrivate, []byte(`{"kty":"EC","crv":"P-384","x":"AA","y":"AA","d":"AA"}`), 0o644)
	jwkOffCurve := filepath.Join(dir, "offcurve.jwk")
	os.WriteFile(jwkOffCurve, []byte(`{"kty":"EC","crv":"P-384","x":"`+b64(big.NewInt(1).FillBytes(make([]byte, 48)))+`","y":"`+b64(big.NewInt(2).FillBytes(make([]byte, 48)))+`"}`), 0o644)
	privPEM := filepath.Join(dir, "private.pem")
	der, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	os.WriteFile(privPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	secret := filepath.Join(dir, "hs.secret")
	os.WriteFile(secret, []byte(strings.Repeat("k", 40)), 0o600)
	shortSecret := filepath.Join(dir, "short.secret")
	os.WriteFile(shortSecret, []byte("short"), 0o600)
	looseSecret := filepath.Join(dir, "loose.secret")
	os.WriteFile(looseSecret, []byte(strings.Repeat("k", 40)), 0o644)

	issuer := func(algs string, keys ...Key) []byte {
		b, _ := json.Marshal(File{Issuers: []Issuer{{Issuer: "https://i", Audiences: []string{"a"}, Algorithms: strings.Fields(algs), Keys: keys}}})
		return b
	}
	good := issuer("RS256 ES384 HS256", Key{KID: "r", File: rsaPEM}, Key{KID: "j", JWKFile: jwkRSA}, Key{KID: "e", JWKFile: jwkEC}, Key{KID: "h", SecretFile: secret})
	f, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	ks := c.Issuers[0].Keys
	if ks[0].Kind != KindRSA || ks[1].Kind != KindRSA || ks[2].Kind != KindP384 || ks[3].Kind != KindHMAC {
		t.Errorf("kinds %+v", ks)
	}
	if ks[0].PEM != ks[1].PEM {
		t.Errorf("the JWK and the PEM of one RSA key differ after loading")
	}
	if c.Issuers[0].Leeway != 30 || c.MaxTokenBytes != DefaultMaxTokenBytes || c.Issuers[0].GroupsClaim != "groups" {
		t.Errorf("defaults: %+v", c.Issuers[0])
	}

	bad := []struct {
		name, reason string
		data         []byte
	}{
		{"no issuers", "no issuers", []byte(`{"issuers": []}`)},
		{"unknown field", "unknown field", []byte(`{"issuers": [], "jku": "x"}`)},
		{"alg none", `algorithm "none"`, issuer("none", Key{File: rsaPEM})},
		{"EdDSA", "EdDSA is not supported", issuer("EdDSA", Key{File: rsaPEM})},
		{"no audience", "audiences", []byte(`{"issuers": [{"issuer": "i", "algorithms": ["RS256"], "keys": [{"file": "/k"}]}]}`)},
		{"leeway too long", "leeway", []byte(`{"issuers": [{"issuer": "i", "audiences": ["a"], "algorithms": ["RS256"], "leeway": "1h", "keys": [{"file": "/k"}]}]}`)},
		{"relative key file", "absolute", issuer("RS256", Key{File: "k.pem"})},
		{"two key sources", "exactly one", issuer("RS256", Key{File: rsaPEM, SecretFile: secret})},
		{"duplicate kid", "appears twice", issuer("RS256", Key{KID: "a", File: rsaPEM}, Key{KID: "a", JWKFile: jwkRSA})},
		{"token limit", "max_token_bytes", []byte(`{"max_token_bytes": 100, "issuers": []}`)},
	}
	for _, b := range bad {
		if _, err := Parse(b.data); err == nil || !strings.Contains(err.Error(), b.reason) {
			t.Errorf("%s: %v, want an error containing %q", b.name, err, b.reason)
		}
	}
	badLoad := []struct {
		name, reason string
		data         []byte
	}{
		{"RSA 1024", "at least 2048", issuer("RS256", Key{File: writePub(t, dir, "small.pem", &small.PublicKey)})},
		{"P-521", "not supported", issuer("ES256", Key{File: writePub(t, dir, "521.pem", &ec521.PublicKey)})},
		{"Ed25519", "Ed25519", issuer("RS256", Key{File: writePub(t, dir, "ed.pem", edPub)})},
		{"private PEM", "not a public key", issuer("RS256", Key{File: privPEM})},
		{"private JWK", "private key", issuer("ES384", Key{JWKFile: jwkPrivate})},
		{"JWK off the curve", "not a point", issuer("ES384", Key{JWKFile: jwkOffCurve})},
		{"short secret", "fewer than 32", issuer("HS256", Key{SecretFile: shortSecret})},
		{"secret readable by others", "chmod 600", issuer("HS256", Key{SecretFile: looseSecret})},
		{"algorithm without a key", "ES384 has no EC-P384 key", issuer("RS256 ES384", Key{File: rsaPEM})},
		{"key without an algorithm", "no algorithm uses it", issuer("RS256", Key{File: rsaPEM}, Key{SecretFile: secret})},
	}
	for _, b := range badLoad {
		f, err := Parse(b.data)
		if err == nil {
			_, err = Load(f)
		}
		if err == nil || !strings.Contains(err.Error(), b.reason) {
			t.Errorf("%s: %v, want an error containing %q", b.name, err, b.reason)
		}
	}
}
