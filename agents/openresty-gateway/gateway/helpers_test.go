package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
)

// testCertValid writes a self-signed certificate for 127.0.0.1 valid for
// d and its key (0600), and returns both paths.
func testCertValid(t testing.TB, dir string, d time.Duration) (string, string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(d),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(dir, "cert-*.pem")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	f.Close()
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	keyFile := f.Name() + ".key"
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f.Name(), keyFile
}

func testCert(t testing.TB, dir string) string {
	c, _ := testCertValid(t, dir, 24*time.Hour)
	return c
}

// issuer is a test token issuer with an ES256 key.
type issuer struct {
	key        *ecdsa.PrivateKey
	policyFile string
}

func newIssuer(t testing.TB, dir string) *issuer {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pub := filepath.Join(dir, "idp.pem")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(policy.File{Issuers: []policy.Issuer{{Issuer: "https://idp.test", Audiences: []string{"api"},
		Algorithms: []string{"ES256"}, Keys: []policy.Key{{KID: "k1", File: pub}}}}})
	pf := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(pf, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return &issuer{key: k, policyFile: pf}
}

func goodPolicy(t testing.TB, dir string) string { return newIssuer(t, t.TempDir()).policyFile }

func (is *issuer) bearer(t testing.TB, sub string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://idp.test", "aud": "api", "sub": sub,
		"exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(is.key)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}
