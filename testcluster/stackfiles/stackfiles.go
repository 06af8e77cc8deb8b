// Package stackfiles makes what the whole-stack scenarios hand to the
// test nodes: a test CA with a server certificate for the gateway, an
// RS256 token issuer (its public key, a JWT policy naming it, tokens it
// signs), an ACL document for one service, and the image of a small web
// service built locally FROM scratch. The e2e scenarios and the demo share
// it; nothing here talks to anything but this host's files and its Docker
// Engine.
package stackfiles

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// File names under the directories Write is given.
const (
	CAName     = "ca.pem"      // the test CA's certificate
	CertName   = "server.pem"  // the gateway's certificate
	KeyName    = "server.key"  // its private key, mode 0600
	JWTKeyName = "jwt-key.pem" // the issuer's public key
	PolicyName = "jwt.json"    // the gateway's JWT policy
	ACLName    = "acl.json"    // the ACL document of the service
	validFor   = 90 * 24 * time.Hour
)

// Files is what Write made. Paths are as the nodes see them (under the
// nodeDir given to Write); HostDir holds the same files on this host.
type Files struct {
	HostDir, NodeDir           string
	CA, Cert, Key, Policy, ACL string
	Issuer, Audience           string
	signer                     *rsa.PrivateKey
}

// Write makes, in hostDir: a test CA and a certificate signed by it for
// hosts (IP addresses or DNS names; 127.0.0.1 and localhost are always
// added), valid for 90 days so that the gateway's certificate expiry check
// stays quiet; an RSA-2048 issuer "hafw-test" for audience service, with a
// JWT policy (RS256 only) naming its public key at nodeDir; and an ACL
// document for service that allows the subjects given, any method and path.
// nodeDir is where the nodes will find hostDir's files.
//
// Return values:
//   - (files, nil): everything is written; the private key files are mode
//     0600, owned by the caller.
//   - (nil, err): a key could not be made or a file not written.
func Write(hostDir, nodeDir string, hosts []string, service string, subjects []string) (*Files, error) {
	f := &Files{HostDir: hostDir, NodeDir: nodeDir,
		CA: filepath.Join(nodeDir, CAName), Cert: filepath.Join(nodeDir, CertName), Key: filepath.Join(nodeDir, KeyName),
		Policy: filepath.Join(nodeDir, PolicyName), ACL: filepath.Join(nodeDir, ACLName),
		Issuer: "hafw-test", Audience: service}
	if err := writePKI(hostDir, hosts); err != nil {
		return nil, err
	}
	var err error
	if f.signer, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&f.signer.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(hostDir, JWTKeyName), "PUBLIC KEY", pub, 0o644); err != nil {
		return nil, err
	}
	policy := map[string]any{"issuers": []any{map[string]any{
		"issuer": f.Issuer, "audiences": []string{service}, "algorithms": []string{"RS256"},
		"keys": []any{map[string]string{"kid": "test-1", "file": filepath.Join(nodeDir, JWTKeyName)}},
	}}}
	acl := map[string]any{"version": 1, "mode": "enforce", "rules": []any{
		map[string]any{"name": "testers", "action": "allow", "subjects": subjects},
	}}
	for name, doc := range map[string]any{PolicyName: policy, ACLName: acl} {
		data, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(hostDir, name), data, 0o644); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// writePKI writes the CA, and the server certificate and key for hosts.
func writePKI(dir string, hosts []string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ha-framework test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validFor),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "ha-framework test gateway"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validFor),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, CAName), "CERTIFICATE", caDER, 0o644); err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, CertName), "CERTIFICATE", leafDER, 0o644); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, KeyName), "PRIVATE KEY", keyDER, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return err
	}
	// WriteFile keeps the mode of an existing file and applies the umask.
	return os.Chmod(path, mode)
}

// Token signs an RS256 JWT of the issuer for subject sub and the
// audience, expiring after ttl.
//
// Return values:
//   - (token, nil): the compact serialization.
//   - ("", err): signing failed.
func (f *Files) Token(sub string, ttl time.Duration) (string, error) {
	enc := base64.RawURLEncoding
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "test-1"})
	if err != nil {
		return "", err
	}
	now := time.Now()
	claims, err := json.Marshal(map[string]any{"iss": f.Issuer, "aud": f.Audience, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(ttl).Unix()})
	if err != nil {
		return "", err
	}
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, f.signer, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signed + "." + enc.EncodeToString(sig), nil
}

// WebPort is where the web image's server listens.
const WebPort = 8080

// BuildWebImage builds the web command (this package's web/) static and,
// from it, the image tag FROM scratch in this host's Docker Engine with the
// classic builder (no registry, no BuildKit). The image carries
// Registrator's SERVICE_CHECK_HTTP label, so docker-service registers it
// with an HTTP check of /health every second. moduleRoot is the root of
// this module's source tree.
//
// Return values:
//   - nil: the image is built (or rebuilt) under tag.
//   - err: go build or docker build failed, with their output, or ctx ended.
func BuildWebImage(ctx context.Context, moduleRoot, tag string) error {
	dir, err := os.MkdirTemp("", "hafw-web-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "web"), "./testcluster/stackfiles/web")
	build.Dir = moduleRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build of the web service: %v\n%s", err, out)
	}
	dockerfile := strings.Join([]string{
		"FROM scratch",
		"COPY web /web",
		"LABEL SERVICE_CHECK_HTTP=/health SERVICE_CHECK_INTERVAL=1s",
		fmt.Sprintf("EXPOSE %d", WebPort),
		`CMD ["/web"]`, ""}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return err
	}
	var out bytes.Buffer
	img := exec.CommandContext(ctx, "docker", "build", "-q", "-t", tag, dir)
	img.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	img.Stdout, img.Stderr = &out, &out
	if err := img.Run(); err != nil {
		return fmt.Errorf("docker build %s: %v\n%s", tag, err, out.String())
	}
	return nil
}
