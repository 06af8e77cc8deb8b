//go:build integration

package lua_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxconf"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxtest"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/routes"
)

// BenchmarkThroughput loads, with wrk and the same settings, a plain nginx
// TLS reverse proxy and the gateway (RS256 token, ACL of a few rules)
// with its token cache on and off, in front of the same upstream; each
// candidate runs once whatever b.N is (make bench uses -benchtime 1x).
// It reports requests per second and the 99th percentile latency.
func BenchmarkThroughput(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("wrk not installed (apt-get install wrk)")
	}
	k := newKeys(b)
	up := fastUpstream(b)
	doc, err := acl.Parse([]byte(`{"version": 1, "rules": [
		{"action": "deny", "paths": [{"prefix": "/orders/internal"}]},
		{"action": "allow", "groups": ["admin"]},
		{"action": "allow", "subjects": ["alice"], "methods": ["GET"], "paths": [{"prefix": "/orders/"}]}]}`))
	if err != nil {
		b.Fatal(err)
	}
	tok := k.token(b, "RS256", claims(), nil)
	plain := plainProxy(b, up)
	cases := []struct {
		name string
		url  string
		auth string
	}{{"plain-proxy", plain + "/orders/1", ""}}
	for _, cache := range []bool{true, false} {
		g := nginxtest.Start(b, nginxconf.Settings{Routes: []routes.Route{{Prefix: "/orders/", Service: "orders", Upstream: up}},
			TokenCache: cache, Workers: 1, MaxTokenBytes: k.policy.MaxTokenBytes}, k.state(b, map[string]*acl.Document{"orders": doc}))
		name := "gateway-rs256-acl-cache"
		if !cache {
			name = "gateway-rs256-acl-nocache"
		}
		cases = append(cases, struct{ name, url, auth string }{name, g.Base + "/orders/1", "Bearer " + tok})
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			rps, p99 := runWrk(b, c.url, c.auth)
			b.ReportMetric(rps, "req/s")
			b.ReportMetric(p99, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

var (
	rpsRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p99RE = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s)`)
	nonRE = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// runWrk loads url for 5 s with one thread and 32 connections.
func runWrk(b *testing.B, url, auth string) (rps, p99ms float64) {
	args := []string{"-t1", "-c32", "-d5s", "--latency"}
	if auth != "" {
		args = append(args, "-H", "Authorization: "+auth)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	if m := nonRE.FindSubmatch(out); m != nil {
		b.Fatalf("wrk saw %s failed responses:\n%s", m[1], out)
	}
	m := rpsRE.FindSubmatch(out)
	l := p99RE.FindSubmatch(out)
	if m == nil || l == nil {
		b.Fatalf("cannot read wrk's output:\n%s", out)
	}
	rps, _ = strconv.ParseFloat(string(m[1]), 64)
	p99ms, _ = strconv.ParseFloat(string(l[1]), 64)
	switch string(l[2]) {
	case "us":
		p99ms /= 1000
	case "s":
		p99ms *= 1000
	}
	return rps, p99ms
}

// fastUpstream is a minimal HTTP server on loopback.
func fastUpstream(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// plainProxy starts nginx as a bare TLS reverse proxy with the gateway's
// TLS and proxy settings but no Lua.
func plainProxy(b *testing.B, upstream string) string {
	dir := b.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o711)
	}
	pki := nginxtest.NewPKI(b, dir)
	listen := nginxtest.FreePort(b)
	user := ""
	if os.Geteuid() == 0 {
		user = "user nobody nogroup;"
	}
	conf := fmt.Sprintf(`daemon off; %s worker_processes 1; pid %[2]s/nginx.pid; error_log %[2]s/error.log notice;
events { worker_connections 4096; }
http {
    access_log off; server_tokens off;
    client_body_temp_path %[2]s/cb; proxy_temp_path %[2]s/p; fastcgi_temp_path %[2]s/f; uwsgi_temp_path %[2]s/u; scgi_temp_path %[2]s/s;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:tls:10m; ssl_session_tickets off;
    server {
        listen %[3]s ssl;
        ssl_certificate %[4]s; ssl_certificate_key %[5]s;
        location /orders/ {
            proxy_pass %[6]s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto https;
        }
    }
}
`, user, dir, listen, pki.CertFile, pki.KeyFile, upstream)
	f := filepath.Join(dir, "plain.conf")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(nginxtest.Binary(b), "-p", dir+"/", "-e", filepath.Join(dir, "error.log"), "-c", f)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); _ = cmd.Wait() })
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", listen); err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 10*time.Second {
			b.Fatal("the plain proxy did not start")
		}
	}
	return "https://" + strings.TrimSpace(listen)
}
