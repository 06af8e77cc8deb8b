//go:build integration

package watcher

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxyapi"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxycfg"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/routes"
	"github.com/ha-framework/ha-framework/ocf/process"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// These tests run the watcher in-process against a real HAProxy (Debian's
// 2.6) that they start, and a real Consul dev agent, on loopback ports
// picked free.

// rig is one HAProxy with one route "web", its watcher and a Consul.
type rig struct {
	t      *testing.T
	cfg    *Config
	api    *api.Client
	listen string
	hc     haproxyapi.Client
}

func newRig(t *testing.T, tune func(*Config)) *rig {
	t.Helper()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not installed (apt-get install haproxy): integration tests need the real one")
	}
	cl := consultest.StartServer(t, &consultest.Options{Dev: true})
	acfg := api.DefaultConfig()
	acfg.Address = cl.HTTPAddr(0)
	client, err := api.NewClient(acfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	listen := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(consultest.FreePorts(t, 1)[0]))
	c := &Config{
		Settings: haproxycfg.Settings{
			Routes: []routes.Route{{Service: "web", Listen: listen, Mode: "http"}},
			Socket: filepath.Join(dir, "admin.sock"), StateFile: filepath.Join(dir, "server-state"),
			Slots: 3, HardStopAfter: 5 * time.Second, TimeoutConnect: 5 * time.Second, TimeoutIdle: time.Minute, Retries: 3,
		},
		Haproxy: haproxy, ConfigFile: filepath.Join(dir, "haproxy.cfg"), MasterPIDFile: filepath.Join(dir, "haproxy.pid"),
		StatusFile: filepath.Join(dir, "status.json"), ConsulAddress: cl.HTTPAddr(0),
		Wait: 30 * time.Second, DrainPeriod: time.Second, KeepLast: true, MaxSlots: DefaultMaxSlots,
	}
	if tune != nil {
		tune(c)
	}
	if err := routes.Check(c.Routes); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Install(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	pid, err := process.StartDaemon(ctx, process.Daemon{Path: haproxy, Args: []string{"-W", "-db", "-f", c.ConfigFile},
		PIDFile: c.MasterPIDFile, LogFile: filepath.Join(dir, "haproxy.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := process.StopGroup(ctx, pid, process.StopOptions{Signal: syscall.SIGUSR1, Grace: 3 * time.Second}); err != nil {
			t.Errorf("stopping haproxy: %v", err)
		}
	})
	r := &rig{t: t, cfg: c, api: client, listen: listen.String(), hc: haproxyapi.Client{Socket: c.Socket, Timeout: time.Second}}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := r.hc.Info(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(filepath.Join(dir, "haproxy.log"))
			t.Fatalf("haproxy does not answer on its socket:\n%s", data)
		}
	}
	logFile, err := os.Create(filepath.Join(dir, "watcher.log"))
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(wctx, c, slog.New(slog.NewTextHandler(logFile, nil))) }()
	t.Cleanup(func() {
		wcancel()
		if err := <-done; err != nil {
			t.Errorf("watcher: %v", err)
		}
		logFile.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logFile.Name())
			t.Logf("watcher log:\n%s", data)
		}
	})
	return r
}

func (r *rig) register(id string, port int) {
	r.t.Helper()
	if err := r.api.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: id, Name: "web", Address: "127.0.0.1", Port: port}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) deregister(id string) {
	r.t.Helper()
	if err := r.api.Agent().ServiceDeregister(id); err != nil {
		r.t.Fatal(err)
	}
}

// serving returns the addresses HAProxy's backend serves, and its slots.
func (r *rig) serving() (addrs []string, slots int) {
	r.t.Helper()
	st, err := r.hc.ServersState(context.Background(), "be_web")
	if err != nil {
		r.t.Fatal(err)
	}
	for _, s := range st {
		if s.Serving() {
			addrs = append(addrs, s.Addr.String())
		}
	}
	return addrs, len(st)
}

// await polls cond every 50 ms until it holds or within passes.
func (r *rig) await(what string, within time.Duration, cond func() bool) {
	r.t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("after %v: %s", within, what)
		}
	}
}

func (r *rig) status() *Status {
	r.t.Helper()
	st, err := ReadStatus(r.cfg.StatusFile)
	if errors.Is(err, ErrNoStatus) {
		return &Status{} // the watcher has only just started
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// httpBackend serves its id; close ends it abruptly, connections in
// flight included, as a crash would.
type httpBackend struct {
	port int
	srv  *http.Server
}

func newBackend(t *testing.T, id string, delay time.Duration) *httpBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &httpBackend{port: l.Addr().(*net.TCPAddr).Port, srv: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(delay)
		io.WriteString(w, id)
	})}}
	go b.srv.Serve(l)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

// load is a bounded client: workers send GET requests over keep-alive
// connections, each request once (it never retries: a failed request
// counts and the worker opens a new connection), until stop is called or
// limit requests were sent. With fresh set, each request has a connection
// of its own (a reload closes idle keep-alive connections, and a request
// sent at that moment is lost by a client that never retries: not what
// the tests that reload measure).
type load struct {
	fresh   bool
	stopped atomic.Bool
	sent    atomic.Int64
	mu      sync.Mutex
	results map[string]int
	wg      sync.WaitGroup
}

func startLoad(addr string, workers int, limit int64) *load {
	return (&load{results: map[string]int{}}).start(addr, workers, limit)
}

func (l *load) start(addr string, workers int, limit int64) *load {
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var conn net.Conn
			var br *bufio.Reader
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			for !l.stopped.Load() && l.sent.Add(1) <= limit {
				if conn == nil {
					c, err := net.DialTimeout("tcp", addr, 2*time.Second)
					if err != nil {
						l.count("connect error")
						time.Sleep(10 * time.Millisecond)
						continue
					}
					conn, br = c, bufio.NewReader(c)
				}
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
				var res string
				if err := req.Write(conn); err != nil {
					res = "write error"
				} else if resp, err := http.ReadResponse(br, req); err != nil {
					res = "no response"
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					res = strconv.Itoa(resp.StatusCode)
					if resp.Close {
						res += " (closed)"
					}
				}
				l.count(res)
				if res != "200" || l.fresh {
					conn.Close()
					conn = nil
				}
			}
		}()
	}
	return l
}

func (l *load) count(what string) {
	l.mu.Lock()
	l.results[what]++
	l.mu.Unlock()
}

// stopWhenDone waits until the limit is reached, and returns the results.
func (l *load) stopWhenDone() map[string]int {
	l.wg.Wait()
	return l.results
}

func (l *load) stop() map[string]int {
	l.stopped.Store(true)
	l.wg.Wait()
	return l.results
}

// The only passing instance is replaced by another (deregistered, and the
// other registered 200 ms later) under load: with none_passing=keep the
// backend keeps the old one meanwhile, and the new one must take traffic
// before the old one is drained. Any 503 ("no server available") means a
// moment without a usable server.
func TestReplaceOnlyInstanceUnderLoad(t *testing.T) {
	for _, check := range []bool{false, true} {
		t.Run(fmt.Sprintf("check=%v", check), func(t *testing.T) { replaceOnlyInstance(t, check) })
	}
}

func replaceOnlyInstance(t *testing.T, check bool) {
	r := newRig(t, func(c *Config) { c.Routes[0].Check = check })
	a, b := newBackend(t, "a", 0), newBackend(t, "b", 0)
	r.register("web-a", a.port)
	r.await("HAProxy serves a", 10*time.Second, func() bool { s, _ := r.serving(); return len(s) == 1 })

	l := startLoad(r.listen, 4, 2_000_000)
	const switches = 15
	ids := []string{"web-a", "web-b"}
	ports := []int{a.port, b.port}
	for i := range switches {
		from, to := i%2, (i+1)%2
		r.deregister(ids[from])
		time.Sleep(200 * time.Millisecond)
		r.register(ids[to], ports[to])
		want := "127.0.0.1:" + strconv.Itoa(ports[to])
		r.await("HAProxy serves only "+want, 10*time.Second, func() bool { s, _ := r.serving(); return len(s) == 1 && s[0] == want })
		time.Sleep(300 * time.Millisecond)
	}
	got := l.stop()
	t.Logf("%d switches under load: %v", switches, got)
	if got["200"] < 1000 {
		t.Errorf("only %d requests succeeded: the load is too light to show anything", got["200"])
	}
	for k, n := range got {
		if k != "200" {
			t.Errorf("%d requests got %q, want none: the backend had no usable server for a moment", n, k)
		}
	}
}

// An instance registered at the route's own listen address is never
// routed (HAProxy would connect to itself until maxconn), and the status
// says why.
func TestOwnListenerNotRouted(t *testing.T) {
	r := newRig(t, nil)
	good := newBackend(t, "good", 0)
	port, _ := strconv.Atoi(strings.TrimPrefix(r.listen, "127.0.0.1:"))
	r.register("web-loop", port)
	r.register("web-good", good.port)
	r.await("HAProxy serves the good instance", 10*time.Second, func() bool { s, _ := r.serving(); return len(s) == 1 })
	if s, _ := r.serving(); s[0] != "127.0.0.1:"+strconv.Itoa(good.port) {
		t.Fatalf("HAProxy serves %v, want only the good instance", s)
	}
	if got := startLoad(r.listen, 1, 50).stopWhenDone(); got["200"] != 50 {
		t.Errorf("requests: %v, want 50 answered by the good instance", got)
	}
	r.await("the status reports the skipped instance", 5*time.Second, func() bool {
		return strings.Contains(r.status().Problems(), r.listen+": one of this resource's own listeners")
	})
	info, err := r.hc.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(info["CurrConns"]); n > 5 {
		t.Errorf("HAProxy holds %d connections after the load: a loop through its own listener?", n)
	}
}

// Slots grow by steps up to max_slots, the rest are left out and
// reported, and slots shrink again when the service does.
func TestMaxSlotsAndShrink(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Slots, c.MaxSlots = 2, 4 })
	var ids []string
	var ports []int
	for i := range 6 {
		b := newBackend(t, strconv.Itoa(i), 0)
		id := "web-" + strconv.Itoa(i)
		ids, ports = append(ids, id), append(ports, b.port)
		r.register(id, b.port)
	}
	r.await("HAProxy serves 4 instances in 4 slots", 20*time.Second, func() bool { s, n := r.serving(); return len(s) == 4 && n == 4 })
	r.await("the status reports 2 left out", 5*time.Second, func() bool {
		return strings.Contains(r.status().Problems(), "web: 2 passing instances left out beyond max_slots")
	})
	// Keep the instance in the highest slot: the shrink must move it into
	// a low one, and the state file must not bring back what that low
	// slot held before.
	st, err := r.hc.ServersState(context.Background(), "be_web")
	if err != nil {
		t.Fatal(err)
	}
	keep := st[len(st)-1].Addr.String()
	if st[len(st)-1].Server != "s4" || !st[len(st)-1].Serving() {
		t.Fatalf("servers %+v, want s4 last and serving", st)
	}
	l := (&load{fresh: true, results: map[string]int{}}).start(r.listen, 2, 1_000_000)
	for i, id := range ids {
		if "127.0.0.1:"+strconv.Itoa(ports[i]) != keep {
			r.deregister(id)
		}
	}
	// The drain period (1 s) ends, then the reload waits out the gap
	// since the last one (minReloadGap).
	r.await("HAProxy shrinks to 2 slots serving only "+keep, 3*minReloadGap, func() bool {
		s, n := r.serving()
		return len(s) == 1 && s[0] == keep && n == 2
	})
	time.Sleep(500 * time.Millisecond)
	got := l.stop()
	t.Logf("requests through the shrink: %v", got)
	for k, n := range got {
		if k != "200" && k != "200 (closed)" {
			t.Errorf("%d requests got %q through the shrink, want none", n, k)
		}
	}
	// The watcher writes its status after applying a change.
	r.await("the status counts the shrink's reload and reports no problem", 5*time.Second, func() bool {
		st := r.status()
		return st.Reloads >= 2 && st.Problems() == ""
	})
	if n := r.status().Reloads; n > 4 {
		t.Errorf("%d reloads, want 2 to 4 (growth to 4 slots, one shrink)", n)
	}
}

// The sole instance crashes with requests in flight, and another passes
// 0.3 s later: with none_passing=keep, no request of a client that never
// retries by itself may fail.
func TestSoleInstanceCrash(t *testing.T) {
	r := newRig(t, func(c *Config) { c.TimeoutConnect = time.Second })
	const failovers = 5
	var total map[string]int = map[string]int{}
	prev := newBackend(t, "first", 2*time.Millisecond)
	r.register("web-0", prev.port)
	r.await("HAProxy serves the first instance", 10*time.Second, func() bool { s, _ := r.serving(); return len(s) == 1 })
	for i := range failovers {
		next := newBackend(t, fmt.Sprint(i), 2*time.Millisecond)
		l := startLoad(r.listen, 4, 200_000)
		time.Sleep(300 * time.Millisecond)
		prev.srv.Close() // the crash: listener and connections closed
		r.deregister("web-" + strconv.Itoa(i))
		time.Sleep(300 * time.Millisecond)
		r.register("web-"+strconv.Itoa(i+1), next.port)
		want := "127.0.0.1:" + strconv.Itoa(next.port)
		r.await("HAProxy serves "+want, 10*time.Second, func() bool { s, _ := r.serving(); return len(s) == 1 && s[0] == want })
		time.Sleep(300 * time.Millisecond)
		for k, n := range l.stop() {
			total[k] += n
		}
		prev = next
	}
	t.Logf("%d crashes under load: %v", failovers, total)
	for k, n := range total {
		if k != "200" {
			t.Errorf("%d requests got %q, want none", n, k)
		}
	}
}

// A reload that keeps failing is retried with growing gaps, never back to
// back: the configuration check of a large backend takes seconds. The
// status reports the failure throughout, also between attempts.
func TestFailingReloadsSpaced(t *testing.T) {
	dir := t.TempDir()
	refuse, count := filepath.Join(dir, "refuse"), filepath.Join(dir, "checks")
	// refusingHaproxy stands for a configuration check that fails (as a
	// check killed at its deadline does) whenever the file refuse exists.
	script := filepath.Join(dir, "refusing-haproxy")
	real, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not installed (apt-get install haproxy)")
	}
	body := fmt.Sprintf("#!/bin/sh\nif [ -e %s ]; then echo check >> %s; echo '[ALERT] (1) : config : refused by the test' >&2; exit 1; fi\nexec %s \"$@\"\n", refuse, count, real)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *Config) { c.Haproxy, c.Slots = script, 2 })
	if err := os.WriteFile(refuse, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		r.register("web-"+strconv.Itoa(i), newBackend(t, strconv.Itoa(i), 0).port)
	}
	r.await("the status reports the refused reload", 5*time.Second, func() bool {
		return strings.Contains(r.status().ApplyError, "refused by the test")
	})
	const watch = 8 * time.Second
	for end := time.Now().Add(watch); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if st := r.status(); !strings.Contains(st.ApplyError, "refused by the test") {
			t.Fatalf("between attempts the status reports %q, want the refused reload", st.ApplyError)
		}
	}
	data, _ := os.ReadFile(count)
	// At 0 s, then after 5 s, then after 10 s more: 2 within 8 s.
	if n := strings.Count(string(data), "check"); n > 2 {
		t.Errorf("%d configuration checks within %v, want at most 2", n, watch)
	}
	os.Remove(refuse)
	r.await("the reload succeeds once the check passes again", 30*time.Second, func() bool { s, n := r.serving(); return len(s) == 4 && n == 4 })
}

// TestHealthQueryRefusedForTooManyConnections: a Consul whose per-client
// connection limit is taken (here by two idle connections; in production
// by one blocking query per route beyond the limit) refuses the query
// with HTTP 429, and the error says which Consul setting to raise.
func TestHealthQueryRefusedForTooManyConnections(t *testing.T) {
	cl := consultest.StartServer(t, &consultest.Options{Dev: true, ExtraHCL: `limits { http_max_conns_per_client = 2 }`})
	for range 2 {
		conn, err := net.Dial("tcp", cl.HTTPAddr(0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
	}
	h := newHealthClient(cl.HTTPAddr(0), "", "", 10*time.Second)
	defer h.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Consul answers 429 on accepting the connection, before reading the
	// request: the client may see the connection close first, an error
	// the watcher retries like any other. Some try gets the answer.
	var err error
	for range 20 {
		if _, _, _, err = h.service(ctx, "web", "", 0, 0); errors.Is(err, ErrTooManyQueries) {
			break
		}
	}
	if !errors.Is(err, ErrTooManyQueries) {
		t.Fatalf("query beyond Consul's connection limit, 20 tries: last err = %v, want ErrTooManyQueries", err)
	}
	if !strings.Contains(err.Error(), "limits.http_max_conns_per_client") {
		t.Errorf("error %q does not name the Consul setting to raise", err)
	}
}
