// Package nginxtest starts the real nginx with a configuration rendered by
// the gateway's renderer, on loopback, for the gateway's integration
// tests: certificates made with crypto/x509, an echoing upstream, and
// cleanup when the test ends.
package nginxtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"

	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/lua"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxconf"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/state"
)

// PKI is a test CA with a server certificate for 127.0.0.1 and a client
// certificate, all in files.
type PKI struct {
	CAFile, CertFile, KeyFile string
	Pool                      *x509.CertPool
	Client                    tls.Certificate
}

// NewPKI makes the certificates under dir.
func NewPKI(t testing.TB, dir string) *PKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gateway test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, server bool) ([]byte, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "gateway test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if server {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			c.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			c.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, c, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	p := &PKI{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server.key"), Pool: x509.NewCertPool()}
	p.Pool.AddCert(caCert)
	write := func(path, typ string, der []byte, mode os.FileMode) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(p.CAFile, "CERTIFICATE", caDER, 0o644)
	sDER, sKey := issue(2, true)
	write(p.CertFile, "CERTIFICATE", sDER, 0o644)
	kDER, _ := x509.MarshalPKCS8PrivateKey(sKey)
	write(p.KeyFile, "PRIVATE KEY", kDER, 0o600)
	cDER, cKey := issue(3, false)
	p.Client = tls.Certificate{Certificate: [][]byte{cDER}, PrivateKey: cKey}
	return p
}

// Echo is an upstream that answers every request with what it received.
type Echo struct {
	*httptest.Server
}

// Seen is an Echo answer.
type Seen struct {
	Method, Path string
	Header       http.Header
}

// NewEcho starts the upstream on loopback.
func NewEcho(t testing.TB) *Echo {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(Seen{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header})
	}))
	t.Cleanup(s.Close)
	return &Echo{s}
}

// Gateway is a running nginx.
type Gateway struct {
	Base       string // https://127.0.0.1:PORT
	Settings   nginxconf.Settings
	PKI        *PKI
	Client     *http.Client // trusts the test CA, no client certificate
	MTLSClient *http.Client // presents the client certificate
	Admin      state.Client
	bin        string
	confFile   string
	cmd        *exec.Cmd
	done       chan struct{}
}

// Binary is the nginx the tests run; they skip, naming it, when it is
// absent.
func Binary(t testing.TB) string {
	for _, b := range []string{"openresty", "nginx"} {
		if p, err := exec.LookPath(b); err == nil {
			return p
		}
		if p := "/usr/sbin/" + b; fileExists(p) {
			return p
		}
	}
	t.Skip("neither openresty nor nginx is installed (apt-get install nginx libnginx-mod-http-lua lua-luaossl lua-cjson lua-resty-core)")
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// FreePort returns a loopback address nothing listens on now.
func FreePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Start renders a configuration from s (filling in listen address,
// directories, certificates and Lua detection), writes st as the
// persisted state when not nil, starts nginx and waits for its health
// location. Workers run as nobody when the test runs as root.
func Start(t testing.TB, s nginxconf.Settings, st *state.State) *Gateway {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	// The workers (nobody) must reach the temporary directory; the
	// private one stays root's.
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o711)
	}
	priv, tmp := filepath.Join(dir, "private"), filepath.Join(dir, "tmp")
	for _, d := range []string{priv, tmp} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Chmod(priv, 0o700)
	pki := NewPKI(t, priv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := nginxconf.DetectLua(ctx, bin, priv)
	if err != nil {
		t.Fatal(err)
	}
	s.LoadModules, s.LuaCPath = l.LoadModules, l.CPath
	s.Listen = FreePort(t)
	s.CertFile, s.KeyFile = pki.CertFile, pki.KeyFile
	if s.ClientCAFile == "" {
		for _, r := range s.Routes {
			if r.MTLS {
				s.ClientCAFile = pki.CAFile
			}
		}
	}
	s.PrivateDir, s.TempDir = priv, tmp
	if os.Geteuid() == 0 {
		s.User = "nobody nogroup"
	}
	if s.IdentityPrefix == "" {
		s.IdentityPrefix, s.SubjectHeader, s.IssuerHeader = "X-Auth-", "X-Auth-Subject", "X-Auth-Issuer"
	}
	if s.MaxTokenBytes == 0 {
		s.MaxTokenBytes = 8192
	}
	conf, err := nginxconf.Render(s)
	if err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(priv, "nginx.conf")
	if err := os.WriteFile(confFile, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := lua.Install(filepath.Join(priv, nginxconf.LuaDir)); err != nil {
		t.Fatal(err)
	}
	if st != nil {
		if err := state.Write(filepath.Join(priv, nginxconf.StateFile), st); err != nil {
			t.Fatal(err)
		}
	}
	g := &Gateway{Base: "https://" + s.Listen, Settings: s, PKI: pki, bin: bin, confFile: confFile,
		Admin: state.Client{Socket: filepath.Join(priv, nginxconf.AdminSocket)}}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool}, MaxIdleConnsPerHost: 16}
	g.Client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	g.MTLSClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{pki.Client}}}, Timeout: 10 * time.Second}
	g.launch(t)
	t.Cleanup(func() {
		g.Stop()
		if t.Failed() {
			t.Logf("nginx error log:\n%s", g.LogTail())
		}
	})
	return g
}

// launch starts nginx and waits for its health location.
func (g *Gateway) launch(t testing.TB) {
	t.Helper()
	priv := g.Settings.PrivateDir
	cmd := exec.Command(g.bin, "-p", priv+"/", "-e", filepath.Join(priv, nginxconf.ErrorLog), "-c", g.confFile)
	// Pdeathsig: a fuzz worker killed by the fuzzing engine runs no
	// cleanup, and its nginx must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	g.cmd, g.done = cmd, done
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := g.Client.Get(g.Base + nginxconf.HealthPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("nginx exited at start:\n%s", g.LogTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer on %s: %v", g.Base, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends nginx (TERM to its process group, KILL after 10s).
func (g *Gateway) Stop() {
	if g.cmd == nil {
		return
	}
	_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
		<-g.done
	}
	g.cmd = nil
}

// Restart stops nginx and starts it again on the same directory: the
// shared memory is gone, only the persisted state remains.
func (g *Gateway) Restart(t testing.TB) {
	t.Helper()
	g.Stop()
	g.Client.CloseIdleConnections()
	g.launch(t)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}

// Do sends a request with the given Authorization header (none when
// empty) and extra headers.
func (g *Gateway) Do(t testing.TB, method, path, auth string, hdr map[string]string) (*http.Response, *Seen) {
	t.Helper()
	req, err := http.NewRequest(method, g.Base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := g.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var seen Seen
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&seen); err != nil {
			t.Fatalf("%s %s: 200 without the upstream's answer: %v", method, path, err)
		}
		return resp, &seen
	}
	return resp, nil
}

// LogTail is the end of nginx's error log, for failure messages.
func (g *Gateway) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(g.Settings.PrivateDir, nginxconf.ErrorLog))
	return tail(string(b), 3000)
}
