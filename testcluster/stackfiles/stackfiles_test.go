package stackfiles

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
)

// TestWrite: the certificate chains to the CA for every host given, the
// key file is private, and a token verifies with golang-jwt against the
// public key the policy names, for the policy's issuer and audience only.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	f, err := Write(dir, "/hafw/stack", []string{"10.1.2.3", "node1"}, "web", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(read(CAName)) {
		t.Fatal("no CA certificate")
	}
	block, _ := pem.Decode(read(CertName))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"127.0.0.1", "localhost", "10.1.2.3", "node1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: h}); err != nil {
			t.Errorf("certificate for %s: %v", h, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, KeyName)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v, want mode 0600", st.Mode(), err)
	}

	// The gateway's own parsers accept both documents.
	if _, err := policy.Parse(read(PolicyName)); err != nil {
		t.Errorf("the gateway refuses the policy: %v", err)
	}
	if _, err := acl.Parse(read(ACLName)); err != nil {
		t.Errorf("the gateway refuses the ACL: %v", err)
	}

	var pol struct {
		Issuers []struct {
			Issuer    string
			Audiences []string
			Keys      []struct{ Kid, File string }
		}
	}
	if err := json.Unmarshal(read(PolicyName), &pol); err != nil {
		t.Fatal(err)
	}
	if len(pol.Issuers) != 1 || len(pol.Issuers[0].Keys) != 1 || pol.Issuers[0].Keys[0].File != "/hafw/stack/"+JWTKeyName {
		t.Fatalf("policy %+v: want one issuer with the key at /hafw/stack/%s", pol, JWTKeyName)
	}
	block, _ = pem.Decode(read(JWTKeyName))
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.Token("alice", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(iss, aud string) error {
		_, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil },
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(iss), jwt.WithAudience(aud), jwt.WithExpirationRequired())
		return err
	}
	if err := parse(pol.Issuers[0].Issuer, pol.Issuers[0].Audiences[0]); err != nil {
		t.Errorf("token does not verify: %v", err)
	}
	if err := parse(pol.Issuers[0].Issuer, "other"); err == nil {
		t.Error("token verifies for another audience")
	}

	var acl struct {
		Rules []struct {
			Action   string
			Subjects []string
		}
	}
	if err := json.Unmarshal(read(ACLName), &acl); err != nil || len(acl.Rules) != 1 || acl.Rules[0].Subjects[0] != "alice" {
		t.Errorf("ACL %+v %v: want one rule allowing alice", acl, err)
	}
}
