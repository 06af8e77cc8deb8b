package policy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
)

func pemOf(t testing.TB, typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func pkix(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "PUBLIC KEY", der)
}

func ecJWK(k *ecdsa.PublicKey, crv string, size int, extra string) string {
	return `{"kty":"EC","crv":"` + crv + `","x":"` + b64(k.X.FillBytes(make([]byte, size))) + `","y":"` + b64(k.Y.FillBytes(make([]byte, size))) + `"` + extra + `}`
}

// kvIssuer is an issuer taking RS256 and ES256 keys from KV folder "idp".
func kvIssuer() *CompiledIssuer {
	return &CompiledIssuer{Issuer: "https://idp", Audiences: []string{"a"}, Algorithms: []string{"RS256", "ES256"}, KVKeys: "idp"}
}

func TestParseKeyDocument(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	privDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	rsaJWK := `{"kty":"RSA","n":"` + b64(rsaKey.N.Bytes()) + `","e":"AQAB"`
	is := kvIssuer()

	good := []struct{ name, doc, kind string }{
		{"PKIX PEM", pkix(t, &rsaKey.PublicKey), KindRSA},
		{"PKCS1 PEM with blank lines", "\n" + pemOf(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)) + "\n\n", KindRSA},
		{"RSA JWK with kid, alg, use", rsaJWK + `,"kid":"k1","alg":"RS256","use":"sig","key_ops":["verify"],"x5t":"abc"}`, KindRSA},
		{"EC JWK", ecJWK(&ec.PublicKey, "P-256", 32, ""), KindP256},
	}
	for _, g := range good {
		ck, err := ParseKeyDocument([]byte(g.doc), "k1", is)
		if err != nil || ck.Kind != g.kind || ck.KID != "k1" || ck.Version == "" {
			t.Errorf("%s: %+v, %v; want a %s key k1 with a version", g.name, ck, err, g.kind)
			continue
		}
		if _, err := ParsePEM([]byte(ck.PEM)); err != nil {
			t.Errorf("%s: the compiled PEM does not parse: %v", g.name, err)
		}
	}
	a, _ := ParseKeyDocument([]byte(pkix(t, &rsaKey.PublicKey)), "k1", is)
	b, _ := ParseKeyDocument([]byte(rsaJWK+"}"), "k1", is)
	if a.Version != b.Version {
		t.Errorf("one key as PEM and as JWK has two versions: %s, %s", a.Version, b.Version)
	}

	bad := []struct{ name, doc, kid, reason string }{
		{"too large", strings.Repeat(" ", MaxKeyDocumentBytes+1), "k1", "exceeds"},
		{"kid with a slash", pkix(t, &rsaKey.PublicKey), "../k1", "kid must be"},
		{"kid with a leading dot", pkix(t, &rsaKey.PublicKey), ".k1", "kid must be"},
		{"kid with SQL", pkix(t, &rsaKey.PublicKey), "1' OR '1'='1", "kid must be"},
		{"empty", "", "k1", "neither a PEM block nor a JWK"},
		{"garbage", "hello", "k1", "neither a PEM block nor a JWK"},
		{"private PEM", pemOf(t, "PRIVATE KEY", privDER), "k1", "holds a private key"},
		{"two PEM blocks", pkix(t, &rsaKey.PublicKey) + pkix(t, &ec.PublicKey), "k1", "data after the PEM block"},
		{"PEM headers", "-----BEGIN PUBLIC KEY-----\nProc-Type: 4,ENCRYPTED\n\n" + strings.SplitN(pkix(t, &ec.PublicKey), "\n", 2)[1], "k1", "PEM headers"},
		{"RSA 1024", pkix(t, &small.PublicKey), "k1", "at least 2048"},
		{"P-384 for RS256/ES256", pkix(t, &ec384.PublicKey), "k1", "use none"},
		{"Ed25519 PEM", pkix(t, edPub), "k1", "Ed25519"},
		{"Ed25519 JWK", `{"kty":"OKP","crv":"Ed25519","x":"` + b64(edPub) + `"}`, "k1", "EdDSA"},
		{"JWK private d", ecJWK(&ec.PublicKey, "P-256", 32, `,"d":"AA"`), "k1", `private key (member "d")`},
		{"JWK private p", rsaJWK + `,"p":"AA"}`, "k1", `private key (member "p")`},
		{"JWK symmetric", `{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`, "k1", "symmetric"},
		{"JWK upper-case D", ecJWK(&ec.PublicKey, "P-256", 32, `,"D":"AA"`), "k1", `unknown member "D"`},
		{"JWK duplicate member", ecJWK(&ec.PublicKey, "P-256", 32, `,"crv":"P-384"`), "k1", "strict JSON"},
		{"JWK kid differs", rsaJWK + `,"kid":"other"}`, "k1", "differs"},
		{"JWK alg not allowed", rsaJWK + `,"alg":"RS512"}`, "k1", `alg "RS512"`},
		{"JWK alg of another kind", rsaJWK + `,"alg":"ES256"}`, "k1", `alg "ES256"`},
		{"JWK use enc", rsaJWK + `,"use":"enc"}`, "k1", "use"},
		{"JWK key_ops sign", rsaJWK + `,"key_ops":["sign"]}`, "k1", "key_ops"},
		{"JWK short x", `{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}`, "k1", "must be 32 bytes"},
		{"JWK P-521", `{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}`, "k1", "P-521"},
		{"JWK RSA with x", rsaJWK + `,"x":"AA"}`, "k1", "does not belong"},
		{"JWK e even", `{"kty":"RSA","n":"` + b64(rsaKey.N.Bytes()) + `","e":"AQAA"}`, "k1", "odd exponent"},
		{"JWK padded n", `{"kty":"RSA","n":"` + b64(rsaKey.N.Bytes()) + `==","e":"AQAB"}`, "k1", "base64url"},
		{"JWK leading zero n", `{"kty":"RSA","n":"` + b64(append([]byte{0}, rsaKey.N.Bytes()...)) + `","e":"AQAB"}`, "k1", "leading zero"},
		{"JWK kty number", `{"kty":1}`, "k1", "not a string"},
	}
	for _, c := range bad {
		_, err := ParseKeyDocument([]byte(c.doc), c.kid, is)
		if err == nil || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.reason)
		}
		if err != nil && len(err.Error()) > 200 {
			t.Errorf("%s: reason of %d bytes", c.name, len(err.Error()))
		}
	}
}

func TestPolicyWithKVKeys(t *testing.T) {
	f, err := Parse([]byte(`{"issuers": [{"issuer": "https://idp", "audiences": ["a"], "algorithms": ["RS256", "ES256"], "kv_keys": "idp", "keys": []}]}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(f)
	if err != nil || c.Issuers[0].KVKeys != "idp" || len(c.Issuers[0].Keys) != 0 {
		t.Fatalf("an issuer with keys in KV only: %+v, %v", c, err)
	}
	bad := []struct{ name, doc, reason string }{
		{"folder with a slash", `{"issuers": [{"issuer": "i", "audiences": ["a"], "algorithms": ["RS256"], "kv_keys": "a/b"}]}`, "kv_keys"},
		{"folder twice", `{"issuers": [{"issuer": "i", "audiences": ["a"], "algorithms": ["RS256"], "kv_keys": "a"}, {"issuer": "j", "audiences": ["a"], "algorithms": ["RS256"], "kv_keys": "a"}]}`, "two issuers"},
		{"no keys at all", `{"issuers": [{"issuer": "i", "audiences": ["a"], "algorithms": ["RS256"]}]}`, "no keys"},
		{"HS256 from KV", `{"issuers": [{"issuer": "i", "audiences": ["a"], "algorithms": ["HS256"], "kv_keys": "a"}]}`, "HS256 has no HMAC key"},
	}
	for _, b := range bad {
		f, err := Parse([]byte(b.doc))
		if err == nil {
			_, err = Load(f)
		}
		if err == nil || !strings.Contains(err.Error(), b.reason) {
			t.Errorf("%s: %v, want an error containing %q", b.name, err, b.reason)
		}
	}
}

func TestSelectKVKeys(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	c := &Compiled{MaxTokenBytes: 8192, Issuers: []CompiledIssuer{*kvIssuer(), {Issuer: "files-only", Algorithms: []string{"ES256"}}}}
	c.Issuers[0].Keys = []CompiledKey{{KID: "file1", Kind: KindP256, PEM: pkix(t, &k1.PublicKey)}}
	pairs := []KVPair{
		{Key: "jwt/idp/keys/", Value: nil},                             // a folder entry
		{Key: "jwt/idp/keys/a", Value: []byte(pkix(t, &k1.PublicKey))}, // good
		{Key: "jwt/idp/keys/b", Value: []byte(pkix(t, &k2.PublicKey))}, // good
		{Key: "jwt/idp/keys/file1", Value: []byte(pkix(t, &k2.PublicKey))},
		{Key: "jwt/idp/config", Value: []byte("anything")},                 // not a key
		{Key: "jwt/other/keys/x", Value: []byte("not a key")},              // no such issuer
		{Key: "acl/orders", Value: []byte("{}")},                           // another prefix
		{Key: "jwt/idp/keys/sub/x", Value: []byte(pkix(t, &k1.PublicKey))}, // a kid with a slash
	}
	keys, refused := SelectKVKeys(c, "jwt/", pairs, nil)
	if len(keys) != 2 || keys["jwt/idp/keys/a"].Key.KID != "a" || keys["jwt/idp/keys/b"].Issuer != "https://idp" {
		t.Errorf("keys %v, want a and b of https://idp", keys)
	}
	want := map[string]string{"jwt/idp/keys/file1": "also a key of jwt_policy_file", "jwt/idp/keys/sub/x": "kid must be"}
	if len(refused) != len(want) {
		t.Errorf("refused %v, want %d", refused, len(want))
	}
	for path, reason := range want {
		if !strings.Contains(refused[path], reason) {
			t.Errorf("refused[%s] = %q, want it to contain %q", path, refused[path], reason)
		}
	}

	// b replaced by a hostile document: b's last good key stays; a
	// deleted: gone.
	next, refused := SelectKVKeys(c, "jwt/", []KVPair{{Key: "jwt/idp/keys/b", Value: []byte(pkix(t, &small.PublicKey))}}, keys)
	if len(next) != 1 || next["jwt/idp/keys/b"].Key.Version != keys["jwt/idp/keys/b"].Key.Version {
		t.Errorf("after a hostile b and a deleted a: %v, want b's last good key only", next)
	}
	if !strings.Contains(refused["jwt/idp/keys/b"], "at least 2048") {
		t.Errorf("refused %v, want b refused for its size", refused)
	}

	// The cap per issuer.
	var many []KVPair
	for i := range MaxKVKeysPerIssuer + 1 {
		many = append(many, KVPair{Key: fmt.Sprintf("jwt/idp/keys/k%02d", i), Value: []byte(pkix(t, &k1.PublicKey))})
	}
	keys, refused = SelectKVKeys(c, "jwt/", many, nil)
	if len(keys) != MaxKVKeysPerIssuer || !strings.Contains(refused[fmt.Sprintf("jwt/idp/keys/k%02d", MaxKVKeysPerIssuer)], "already has") {
		t.Errorf("%d keys, refused %v; want %d and the last refused", len(keys), refused, MaxKVKeysPerIssuer)
	}

	// A flood of documents: those beyond the bound are not read, and
	// one refusal names the folder.
	var flood []KVPair
	for i := range MaxKeyDocuments + 500 {
		flood = append(flood, KVPair{Key: fmt.Sprintf("jwt/idp/keys/f%04d", i), Value: []byte("junk")})
	}
	keys, refused = SelectKVKeys(c, "jwt/", flood, nil)
	if len(keys) != 0 || len(refused) != MaxKeyDocuments+1 ||
		!strings.Contains(refused["jwt/idp/keys/"], fmt.Sprintf("jwt/idp/keys/f%04d and those after it are ignored", MaxKeyDocuments)) {
		t.Errorf("a flood: %d keys, %d refusals, folder refusal %q", len(keys), len(refused), refused["jwt/idp/keys/"])
	}

	// Merged: the file key first, then the KV keys by path; c unchanged.
	m := c.WithKVKeys(map[string]StoredKey{"jwt/idp/keys/b": {Issuer: "https://idp", Key: CompiledKey{KID: "b"}}, "jwt/idp/keys/a": {Issuer: "https://idp", Key: CompiledKey{KID: "a"}}})
	var kids []string
	for _, k := range m.Issuers[0].Keys {
		kids = append(kids, k.KID)
	}
	if strings.Join(kids, " ") != "file1 a b" || len(c.Issuers[0].Keys) != 1 || len(m.Issuers[1].Keys) != 0 {
		t.Errorf("merged kids %v (original %d keys), want file1 a b", kids, len(c.Issuers[0].Keys))
	}

	// A policy change: keys that no longer fit are dropped.
	es384 := &Compiled{Issuers: []CompiledIssuer{{Issuer: "https://idp", Algorithms: []string{"ES384"}, KVKeys: "idp"}}}
	if got := FitKVKeys(es384, "jwt/", next); len(got) != 0 {
		t.Errorf("P-256 keys kept under an ES384-only policy: %v", got)
	}
	if got := FitKVKeys(c, "jwt/", next); len(got) != 1 {
		t.Errorf("FitKVKeys dropped a fitting key: %v", got)
	}
}

// FuzzParseKeyDocument: no document panics the parser, and every key it
// accepts is a public key of a kind the issuer uses, in a PEM form that
// parses again to the same kind.
func FuzzParseKeyDocument(f *testing.F) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add([]byte(pkix(f, &rsaKey.PublicKey)), "k1")
	f.Add([]byte(ecJWK(&ec.PublicKey, "P-256", 32, `,"kid":"k1","alg":"ES256"`)), "k1")
	f.Add([]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AA"}`), "k")
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}`), "../x")
	is := kvIssuer()
	f.Fuzz(func(t *testing.T, data []byte, kid string) {
		ck, err := ParseKeyDocument(data, kid, is)
		if err != nil {
			if len(err.Error()) > 300 {
				t.Errorf("reason of %d bytes", len(err.Error()))
			}
			return
		}
		pub, perr := ParsePEM([]byte(ck.PEM))
		kind, kerr := KindOf(pub)
		if perr != nil || kerr != nil || kind != ck.Kind || is.uses(kind) != nil || ck.KID != kid || strings.Contains(kid, "/") {
			t.Errorf("accepted %q (kid %q) as %+v: %v %v", data, kid, ck, perr, kerr)
		}
	})
}
