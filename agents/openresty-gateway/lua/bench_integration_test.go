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
	"slices"
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

// BenchmarkThroughput compares, with wrk and the same settings, a plain
// nginx TLS reverse proxy and the gateway (RS256 token, ACL of a few
// rules) with its token cache on and off, in front of the same upstream.
// Each candidate is measured twice: saturated (32 connections; its p99 is
// mostly queueing, the throughput gap in another form, since wrk, nginx
// and the upstream share the machine) and light (one connection, one
// request at a time; the latency the gateway's work adds to a request).
// The candidates alternate in every round, so that the machine's noise
// falls on all of them alike, and each figure is the median over the
// rounds; the gateway's share of the plain proxy's throughput and its
// added latency are medians of per-round comparisons. The whole run is
// bounded: benchRounds rounds of a few seconds per candidate, whatever
// b.N is (make bench uses -benchtime 1x).
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
	plain, plainPID := plainProxy(b, up)
	// Every candidate gets the same requests, token included: the
	// plain proxy forwards it unread.
	cands := []*benchCandidate{{name: "plain-proxy", url: plain + "/orders/1", auth: "Bearer " + tok, pidFile: plainPID}}
	for _, cache := range []bool{true, false} {
		g := nginxtest.Start(b, nginxconf.Settings{Routes: []routes.Route{{Prefix: "/orders/", Service: "orders", Upstream: up}},
			TokenCache: cache, Workers: 1, MaxTokenBytes: k.policy.MaxTokenBytes}, k.state(b, map[string]*acl.Document{"orders": doc}))
		name := "gateway-rs256-acl-cache"
		if !cache {
			name = "gateway-rs256-acl-nocache"
		}
		cands = append(cands, &benchCandidate{name: name, url: g.Base + "/orders/1", auth: "Bearer " + tok,
			pidFile: filepath.Join(g.Settings.PrivateDir, nginxconf.PIDFile)})
	}
	for _, c := range cands {
		// Warms TLS, the upstream connections and LuaJIT's traces.
		c.run(b, saturated, time.Second)
	}
	for r := 0; r < benchRounds; r++ {
		// Alternate the order too: whoever runs first in a round does
		// not always meet the same neighbours.
		order := slices.Clone(cands)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, c := range order {
			c.sat = append(c.sat, c.run(b, saturated, benchSaturatedFor))
			c.light = append(c.light, c.run(b, light, benchLightFor))
		}
	}
	base := cands[0]
	for _, c := range cands {
		b.Run(c.name, func(b *testing.B) {
			b.ReportMetric(median(c.sat, func(i int, w wrkResult) float64 { return w.rps }), "req/s")
			b.ReportMetric(median(c.sat, func(i int, w wrkResult) float64 { return w.p99 }), "p99-ms")
			b.ReportMetric(median(c.sat, func(i int, w wrkResult) float64 { return w.cpu }), "cpu-us/req")
			b.ReportMetric(median(c.light, func(i int, w wrkResult) float64 { return w.p50 }), "light-p50-ms")
			b.ReportMetric(median(c.light, func(i int, w wrkResult) float64 { return w.p99 }), "light-p99-ms")
			if c != base {
				b.ReportMetric(median(c.sat, func(i int, w wrkResult) float64 { return 100 * w.rps / base.sat[i].rps }), "%-of-plain")
				b.ReportMetric(median(c.sat, func(i int, w wrkResult) float64 { return w.cpu - base.sat[i].cpu }), "added-cpu-us/req")
				b.ReportMetric(median(c.light, func(i int, w wrkResult) float64 { return w.p50 - base.light[i].p50 }), "added-p50-ms")
				b.ReportMetric(median(c.light, func(i int, w wrkResult) float64 { return w.p99 - base.light[i].p99 }), "added-p99-ms")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// The benchmark's bounds: 3 candidates x benchRounds x (saturated +
// light) is a minute of load (wrk counts in whole seconds).
const (
	benchRounds       = 5
	benchSaturatedFor = 2 * time.Second
	benchLightFor     = 2 * time.Second
)

type benchCandidate struct {
	name, url, auth string
	pidFile         string      // the nginx master's
	sat, light      []wrkResult // one per round
}

// wrkResult is one wrk run: requests per second, latency percentiles,
// and the CPU time nginx's workers spent per request. The CPU time is
// the figure least disturbed by other load on the machine: it counts
// what the workers did, not how long they waited for a core.
type wrkResult struct{ rps, p50, p99, cpu float64 }

// run loads the candidate with conns connections for d.
func (c *benchCandidate) run(b *testing.B, conns int, d time.Duration) wrkResult {
	before := workersCPU(b, c.pidFile)
	r, n := runWrk(b, c.url, c.auth, conns, d)
	r.cpu = float64((workersCPU(b, c.pidFile) - before).Microseconds()) / float64(n)
	return r
}

// workersCPU is the user and system time of the children of the nginx
// master whose pid is in pidFile (Linux's /proc).
func workersCPU(b *testing.B, pidFile string) time.Duration {
	pid, err := os.ReadFile(pidFile)
	if err != nil {
		b.Fatal(err)
	}
	master := strings.TrimSpace(string(pid))
	kids, err := os.ReadFile("/proc/" + master + "/task/" + master + "/children")
	if err != nil {
		b.Fatal(err)
	}
	var ticks int64
	for _, k := range strings.Fields(string(kids)) {
		stat, err := os.ReadFile("/proc/" + k + "/stat")
		if err != nil {
			b.Fatal(err)
		}
		// After the command name in parentheses: state is field 3,
		// utime and stime are fields 14 and 15.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	// USER_HZ is 100 on every Linux architecture Go supports here.
	return time.Duration(ticks) * 10 * time.Millisecond
}

// median is the median of f over a candidate's rounds; f also gets the
// round's index, to compare with another candidate's same round.
func median(rs []wrkResult, f func(int, wrkResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(i, r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

var (
	rpsRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p50RE = regexp.MustCompile(`\s50%\s+([0-9.]+)(us|ms|s)`)
	p99RE = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s)`)
	reqRE = regexp.MustCompile(`(\d+) requests in`)
	nonRE = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// The loads: wrk's connection count (one thread each).
const (
	saturated = 32
	light     = 1
)

// runWrk loads url for d with one thread and conns connections; it
// returns the figures and the number of requests made.
func runWrk(b *testing.B, url, auth string, conns int, d time.Duration) (wrkResult, int) {
	args := []string{"-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	if auth != "" {
		args = append(args, "-H", "Authorization: "+auth)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	if m := nonRE.FindSubmatch(out); m != nil {
		b.Fatalf("wrk saw %s failed responses:\n%s", m[1], out)
	}
	m, n := rpsRE.FindSubmatch(out), reqRE.FindSubmatch(out)
	l50, l99 := p50RE.FindSubmatch(out), p99RE.FindSubmatch(out)
	if m == nil || n == nil || l50 == nil || l99 == nil {
		b.Fatalf("cannot read wrk's output:\n%s", out)
	}
	var r wrkResult
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	r.p50, r.p99 = millis(l50), millis(l99)
	reqs, _ := strconv.Atoi(string(n[1]))
	return r, max(reqs, 1)
}

// millis reads one of wrk's latency figures (number, unit) in ms.
func millis(m [][]byte) float64 {
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	switch string(m[2]) {
	case "us":
		return v / 1000
	case "s":
		return v * 1000
	}
	return v
}

// fastUpstream is a minimal HTTP server on loopback.
func fastUpstream(b testing.TB) string {
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
// TLS and proxy settings but no Lua; it returns its base URL and the
// path of its pid file.
func plainProxy(b testing.TB, upstream string) (string, string) {
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
	return "https://" + strings.TrimSpace(listen), filepath.Join(dir, "nginx.pid")
}
