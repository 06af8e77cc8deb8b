// Package stackkit is what a client of the whole stack needs, for the demo
// (testcluster/cmd/hafw-demo) and the e2e scenarios alike: a test CA and
// the gateway's certificate, a JWT issuer with the gateway's policy file and
// tokens, an ACL document, and a client that calls through the gateway
// while something breaks and measures what it saw. It returns errors
// instead of taking a *testing.T, so a program can use it too.
package stackkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
)

// CA is a throwaway certificate authority (ECDSA P-256).
type CA struct {
	Cert *x509.Certificate
	PEM  []byte // the CA certificate, for clients' trust stores
	key  *ecdsa.PrivateKey
}

// NewCA makes a CA called name, valid from an hour ago for validity.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, PEM: pemOf("CERTIFICATE", der), key: key}, nil
}

// Pool is a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Server issues a TLS server certificate for hosts (IP addresses and DNS
// names) valid as long as the CA, and returns it and its key in PEM.
func (ca *CA) Server(cn string, hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: ca.Cert.NotBefore, NotAfter: ca.Cert.NotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemOf("CERTIFICATE", der), pemOf("PRIVATE KEY", kd), nil
}

// Issuer signs JWTs (ES256) that the gateway accepts once its policy names
// the issuer's public key.
type Issuer struct {
	Name     string // iss
	Audience string // aud
	KID      string // kid of the key in the policy
	key      *ecdsa.PrivateKey
}

// NewIssuer makes an issuer with a fresh P-256 key.
func NewIssuer(name, audience, kid string) (*Issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Issuer{Name: name, Audience: audience, KID: kid, key: key}, nil
}

// PublicKeyPEM is the issuer's public key, the file the policy names.
func (is *Issuer) PublicKeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(&is.key.PublicKey)
	if err != nil {
		return nil, err
	}
	return pemOf("PUBLIC KEY", der), nil
}

// Policy is the gateway's jwt_policy_file accepting this issuer's tokens,
// its public key read from keyFile (a path on the gateway's node).
func (is *Issuer) Policy(keyFile string) ([]byte, error) {
	return json.MarshalIndent(policy.File{Issuers: []policy.Issuer{{Issuer: is.Name, Audiences: []string{is.Audience},
		Algorithms: []string{"ES256"}, Leeway: "30s", Keys: []policy.Key{{KID: is.KID, File: keyFile}}}}}, "", "  ")
}

// Token is a signed token for subject sub, expiring after ttl.
func (is *Issuer) Token(sub string, ttl time.Duration) (string, error) {
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": is.Name, "aud": is.Audience, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(ttl).Unix()})
	tok.Header["kid"] = is.KID
	return tok.SignedString(is.key)
}

// Tampered is token with its payload's subject replaced by sub and the
// original signature kept: a forgery every verifier must refuse.
func Tampered(token, sub string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWS: want three segments")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return "", err
	}
	claims["sub"] = sub
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, "."), nil
}

// AllowSubjects is an ACL document (Consul KV acl/<service>) of revision
// version letting the given subjects make any request, and nobody else.
func AllowSubjects(version int, subjects ...string) ([]byte, error) {
	d := acl.Document{Version: version, Mode: "enforce",
		Rules: []acl.Rule{{Name: "allowed", Action: "allow", Subjects: subjects}}}
	return json.Marshal(d)
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62)) // never fails (crypto/rand)
	return n.Add(n, big.NewInt(1))
}
