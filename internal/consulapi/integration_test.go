//go:build integration

package consulapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

const managementToken = "6b1a3c2e-9f0d-4a57-8c1e-2d3b4f5a6c7d"

// pki is a CA made for the test, with a server certificate for
// 127.0.0.1 and a client certificate, all as PEM files.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func makePKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "consulapi test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, name string) (string, string) {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	p := pki{ca: write("ca.pem", "CERTIFICATE", caDER)}
	p.serverCert, p.serverKey = leaf(2, "server.dc1.consul", x509.ExtKeyUsageServerAuth, "server")
	p.clientCert, p.clientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth, "client")
	return p
}

// startConsul starts a real Consul with ACLs (default deny) on its HTTP
// port and HTTPS that verifies clients on another, and returns the
// server and the HTTPS address.
func startConsul(t *testing.T, p pki) (*consultest.Cluster, string) {
	t.Helper()
	port := consultest.FreePorts(t, 1)[0]
	hcl := fmt.Sprintf(`
ports { https = %d }
tls {
  defaults { ca_file = %q cert_file = %q key_file = %q verify_incoming = true }
  internal_rpc { verify_incoming = false }
}
acl {
  enabled = true
  default_policy = "deny"
  tokens { initial_management = %q }
}
`, port, p.ca, p.serverCert, p.serverKey, managementToken)
	c := consultest.StartServer(t, &consultest.Options{Dev: true, ExtraHCL: hcl})
	return c, fmt.Sprintf("127.0.0.1:%d", port)
}

func writeToken(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func client(t *testing.T, cfg Config) *api.Client {
	t.Helper()
	o, err := cfg.Options()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func within(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// putKey writes a key (needs the management token) and returns the
// query options of ctx.
func kvRoundTrip(ctx context.Context, c *api.Client, key string) error {
	q := (&api.WriteOptions{}).WithContext(ctx)
	if _, err := c.KV().Put(&api.KVPair{Key: key, Value: []byte("v")}, q); err != nil {
		return err
	}
	pair, _, err := c.KV().Get(key, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return err
	}
	if pair == nil || string(pair.Value) != "v" {
		return fmt.Errorf("read back %+v", pair)
	}
	return nil
}

func TestRealConsul(t *testing.T) {
	p := makePKI(t)
	srv, httpsAddr := startConsul(t, p)
	httpAddr := srv.HTTPAddr(0)
	tokenFile := writeToken(t, managementToken)

	t.Run("http with the token from its file", func(t *testing.T) {
		c := client(t, Config{Address: "http://" + httpAddr, TokenFile: tokenFile})
		if err := kvRoundTrip(within(t, 10*time.Second), c, "consulapi/http"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("no token is forbidden, whatever the environment holds", func(t *testing.T) {
		// An administrator's shell may export these; the agent must send
		// only what its parameters say.
		t.Setenv("CONSUL_HTTP_TOKEN", managementToken)
		t.Setenv("CONSUL_HTTP_TOKEN_FILE", tokenFile)
		c := client(t, Config{Address: httpAddr})
		err := kvRoundTrip(within(t, 10*time.Second), c, "consulapi/denied")
		if !IsForbidden(err) || IsUnreachable(err) {
			t.Fatalf("write without a token = %v; want 403 (IsForbidden)", err)
		}
		if got := Describe(err); !strings.HasPrefix(got, "403 ") {
			t.Errorf("Describe = %q", got)
		}
	})

	t.Run("unknown token is forbidden", func(t *testing.T) {
		c := client(t, Config{Address: httpAddr, TokenFile: writeToken(t, "00000000-0000-4000-8000-000000000000")})
		if err := kvRoundTrip(within(t, 10*time.Second), c, "consulapi/unknown"); !IsForbidden(err) {
			t.Fatalf("write with an unknown token = %v; want IsForbidden", err)
		}
	})

	t.Run("deadline per request", func(t *testing.T) {
		c := client(t, Config{Address: httpAddr, TokenFile: tokenFile})
		ctx := within(t, 10*time.Second)
		if err := kvRoundTrip(ctx, c, "consulapi/block"); err != nil {
			t.Fatal(err)
		}
		_, meta, err := c.KV().Get("consulapi/block", (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		// A blocking query that would wait a minute ends with its own
		// context; the same client then serves the next call with its
		// own budget.
		short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		begin := time.Now()
		_, _, err = c.KV().Get("consulapi/block", (&api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute}).WithContext(short))
		if !errors.Is(err, context.DeadlineExceeded) || IsUnreachable(err) {
			t.Fatalf("blocking query past its deadline = %v; want DeadlineExceeded, not unreachable", err)
		}
		if took := time.Since(begin); took > 5*time.Second {
			t.Errorf("blocking query ended after %v, long past its 300ms deadline", took)
		}
		if err := kvRoundTrip(within(t, 10*time.Second), c, "consulapi/after"); err != nil {
			t.Errorf("call after a timed-out one: %v", err)
		}
	})

	t.Run("nothing listening is unreachable", func(t *testing.T) {
		port := consultest.FreePorts(t, 1)[0]
		c := client(t, Config{Address: fmt.Sprintf("127.0.0.1:%d", port)})
		_, err := c.Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(within(t, 5*time.Second)))
		if !IsUnreachable(err) || IsForbidden(err) {
			t.Fatalf("call to a closed port = %v; want IsUnreachable", err)
		}
		if got := Describe(err); got != "connection refused" {
			t.Errorf("Describe = %q, want connection refused", got)
		}
	})

	t.Run("https with CA and client certificate", func(t *testing.T) {
		c := client(t, Config{Address: "https://" + httpsAddr, TokenFile: tokenFile, CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey})
		if err := kvRoundTrip(within(t, 10*time.Second), c, "consulapi/https"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("https without the CA is unreachable", func(t *testing.T) {
		c := client(t, Config{Address: "https://" + httpsAddr, TokenFile: tokenFile, CertFile: p.clientCert, KeyFile: p.clientKey})
		err := kvRoundTrip(within(t, 10*time.Second), c, "consulapi/noca")
		if !IsUnreachable(err) {
			t.Fatalf("https without the CA = %v; want IsUnreachable", err)
		}
		if got := Describe(err); !strings.Contains(got, "unknown authority") {
			t.Errorf("Describe = %q, want it to name the unknown authority", got)
		}
	})

	t.Run("https without a client certificate is unreachable", func(t *testing.T) {
		c := client(t, Config{Address: "https://" + httpsAddr, TokenFile: tokenFile, CAFile: p.ca})
		if err := kvRoundTrip(within(t, 10*time.Second), c, "consulapi/nocert"); !IsUnreachable(err) {
			t.Fatalf("https without a client certificate = %v; want IsUnreachable", err)
		}
	})
}
