//go:build e2e

// The gateway on the test cluster: its files (TLS, JWT policy with an
// HS256 secret), the openresty-gateway clone routing to the local
// haproxy-dynamic listener, and requests through it with a signed token.
// Used by the node-join and floating-IP scenarios.
package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ha-framework/ha-framework/testcluster/harness"
)

const (
	gwID       = "gw" // primitive of the clone gw-clone
	gwHost     = "gateway.test"
	gwDir      = "/hafw/gw" // in every node
	gwIssuer   = "hafw-e2e"
	gwAudience = "web"
)

// gatewayFiles are the gateway's files on this host, and where every node
// finds them (harness.Options.Files): a certificate for gwHost, its key, a
// JWT policy and its HS256 secret (root, 0600: the agent refuses wider).
type gatewayFiles struct {
	mounts map[string]string // host path → path in the node
	secret string
}

// withConsul is the files a node needs for the gateway and the Consul
// binary, as harness.Options.Files takes them.
func (g *gatewayFiles) withConsul(t *testing.T) map[string]string {
	files := map[string]string{consulBinary(t): consulInNode}
	for h, n := range g.mounts {
		files[h] = n
	}
	return files
}

func newGatewayFiles(t *testing.T) *gatewayFiles {
	t.Helper()
	dir := t.TempDir()
	g := &gatewayFiles{mounts: map[string]string{}, secret: hex.EncodeToString(harness.RandomBytes(32))}
	write := func(name string, data []byte, mode os.FileMode) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		g.mounts[p] = gwDir + "/" + name
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: gwHost},
		DNSNames: []string{gwHost}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write("gw.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	write("gw.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	write("hs256.secret", []byte(g.secret+"\n"), 0o600)
	write("jwt.json", []byte(`{"issuers": [{"issuer": "`+gwIssuer+`", "audiences": ["`+gwAudience+`"], "algorithms": ["HS256"],
  "keys": [{"kid": "e2e", "secret_file": "`+gwDir+`/hs256.secret"}]}]}
`), 0o644)
	return g
}

// token is a bearer token the gateway accepts for an hour.
func (g *gatewayFiles) token(t *testing.T, sub string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": gwIssuer, "aud": gwAudience, "sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "e2e"
	s, err := tok.SignedString([]byte(g.secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// createGateway creates the gateway clone in front of the lb clone's web
// listener (setupProxyFailover), with an ACL letting every verified
// subject through, and waits until the gateway on every node serves web.
func createGateway(t *testing.T, c *harness.Cluster, g *gatewayFiles, web string) {
	t.Helper()
	n0 := c.Nodes[0]
	start := time.Now()
	if out, err := c.Exec(n0, "curl", "-sf", "-m", "5", "-X", "PUT", "--data", `{"version": 1, "rules": [{"name": "all", "action": "allow"}]}`,
		"http://127.0.0.1:8500/v1/kv/acl/web"); err != nil || strings.TrimSpace(out) != "true" {
		t.Fatalf("ACL of web into Consul KV: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"pcs", "resource", "create", gwID, "ocf:ha-framework:openresty-gateway", "routes=/=web=" + strings.TrimSuffix(strings.TrimPrefix(proxyURL, "http://"), "/"),
			"tls_cert_file=" + gwDir + "/gw.pem", "tls_key_file=" + gwDir + "/gw.key", "jwt_policy_file=" + gwDir + "/jwt.json",
			"workers=1", "clone", "interleave=true"},
		{"pcs", "constraint", "order", "start", "lb-clone", "then", "gw-clone"},
		{"pcs", "constraint", "colocation", "add", "gw-clone", "with", "lb-clone"},
	} {
		if out, err := c.Exec(n0, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	waitGatewayStarted(t, c, n0, c.Nodes, 2*time.Minute)
	waitGatewayServes(t, c, g, c.Nodes, web, time.Minute)
	t.Logf("timing: gateway Started on %d nodes and serving web %s after create", len(c.Nodes), time.Since(start).Round(100*time.Millisecond))
}

// waitGatewayStarted waits until view sees the gateway clone Started on
// exactly on.
func waitGatewayStarted(t *testing.T, c *harness.Cluster, view string, on []string, within time.Duration) {
	t.Helper()
	want := slices.Clone(on)
	slices.Sort(want)
	c.WaitFor(within, "gateway Started on "+strings.Join(want, ","), func() (bool, string) {
		s, err := c.Status(view)
		if err != nil {
			return false, err.Error()
		}
		got := slices.Clone(s.Resources[gwID])
		slices.Sort(got)
		started := 0
		for _, r := range s.Roles[gwID] {
			if r == "Started" {
				started++
			}
		}
		return slices.Equal(got, want) && started == len(want),
			"gateway on [" + strings.Join(got, ",") + "] roles " + strings.Join(s.Roles[gwID], ",") + failures(s, gwID)
	})
}

// viaGateway is GET / through the gateway at addr (an IP) from node, with
// a token; the body is the name of the node running web.
func viaGateway(c *harness.Cluster, tok, node, addr string) (string, error) {
	return c.Exec(node, "curl", "-sf", "-m", "5", "-k", "--resolve", gwHost+":443:"+addr,
		"-H", "Authorization: Bearer "+tok, "https://"+gwHost+"/")
}

// waitGatewayServes waits until the gateway on each of nodes, asked on the
// node itself, answers a request with a token with web's node, and refuses
// one without a token (401: it is the gateway that answered).
func waitGatewayServes(t *testing.T, c *harness.Cluster, g *gatewayFiles, nodes []string, web string, within time.Duration) {
	t.Helper()
	tok := g.token(t, "alice")
	c.WaitFor(within, "web served through the gateways of "+strings.Join(nodes, ","), func() (bool, string) {
		for _, n := range nodes {
			out, err := viaGateway(c, tok, n, "127.0.0.1")
			if err != nil || strings.TrimSpace(out) != web {
				return false, n + ": " + strings.TrimSpace(out) + " " + errString(err)
			}
			code, _ := c.Exec(n, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", "-k",
				"--resolve", gwHost+":443:127.0.0.1", "https://"+gwHost+"/")
			if strings.TrimSpace(code) != "401" {
				return false, n + ": without a token: " + code + ", want 401"
			}
		}
		return true, ""
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
