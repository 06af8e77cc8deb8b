//go:build integration

package haproxydynamic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxyapi"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxycfg"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/routes"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/watcher"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/ocf/process"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// BenchmarkHAProxyDynamic measures the proxy's numbers in one run, against
// a real HAProxy, a real Consul dev agent and real HTTP backends, all on
// loopback ports picked free, with the agent run in-process (the watcher
// is this test binary, see TestMain):
//
//   - propagation: from a Consul registration change (the agent HTTP API
//     call included) until HAProxy's "show servers state" shows the
//     instance serving, or no longer serving; p50 and p99 in ms.
//   - zero-drop: a bounded load generator sends requests through the
//     proxy while instances are added, drained and removed, once with
//     haproxy-dynamic and once the consul-template way (the whole
//     configuration re-rendered and HAProxy reloaded on every change);
//     failed requests and latency of both, and their ratio.
//   - watcher-idle: the watcher's resident memory and its CPU while
//     nothing changes.
//
// Run it with
//
//	go test -tags integration -run '^$' -bench . -benchtime 1x ./agents/haproxy-dynamic/haproxydynamic/
//
// Every sub-benchmark repeats its whole measurement b.N times and pools
// the samples; ns/op means nothing here and is suppressed.
func BenchmarkHAProxyDynamic(b *testing.B) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		b.Skip("haproxy not installed (apt-get install haproxy): the benchmark needs the real one")
	}
	e := newBenchEnv(b)
	b.Run("propagation", e.benchPropagation)
	b.Run("zero-drop", e.benchZeroDrop)
	b.Run("watcher-idle", e.benchWatcherIdle)
}

const (
	// benchChanges is how many registrations, and as many
	// deregistrations, the propagation benchmark times.
	benchChanges = 100
	// benchChurn is how many instances the zero-drop benchmark adds,
	// drains and removes in each variant.
	benchChurn = 100
	// benchChurnPeriod paces the churn: one instance added and one
	// removed per period, a fast rolling deployment. Both variants get
	// the same schedule, so the same load meets the same changes.
	benchChurnPeriod = 200 * time.Millisecond
	// benchWorkers and benchRequestTimeout shape the load generator.
	benchWorkers        = 2
	benchRequestTimeout = 2 * time.Second
	// benchMaxRequests caps each variant's load by count; the phase's
	// time cap bounds it by time.
	benchMaxRequests = 300_000
	// benchChangeTimeout bounds the wait for one change to show in
	// HAProxy, benchDrainTimeout the wait for a drain to end (the
	// drain_period and hard_stop_after below, plus a margin).
	benchChangeTimeout = 5 * time.Second
	benchDrainTimeout  = 8 * time.Second
	benchPhaseCap      = 60 * time.Second
	benchIdle          = 10 * time.Second
	// clockTicks is USER_HZ, the unit of utime and stime in
	// /proc/<pid>/stat: 100 on every Linux architecture Go supports
	// (getconf CLK_TCK), and not readable without cgo.
	clockTicks = 100
)

// benchEnv is what the sub-benchmarks share: one Consul, one running
// haproxy-dynamic resource with two permanent instances.
type benchEnv struct {
	dir      string // short: HAProxy's socket path must stay <= 97 bytes
	stateDir string
	consul   *api.Client
	listen   string // the dynamic route's frontend
	socket   haproxyapi.Client
	base     []*benchBackend
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	dir, err := os.MkdirTemp("/tmp", "hafw")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	cl := consultest.StartServer(b, &consultest.Options{Dev: true})
	cfg := api.DefaultConfig()
	cfg.Address = cl.HTTPAddr(0)
	client, err := api.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	e := &benchEnv{dir: dir, stateDir: filepath.Join(dir, "d"), consul: client,
		listen: "127.0.0.1:" + strconv.Itoa(consultest.FreePorts(b, 1)[0])}
	e.socket = haproxyapi.Client{Socket: filepath.Join(e.stateDir, "admin.sock"), Timeout: time.Second}
	for i := range 2 {
		be := startBenchBackend(b, "base-"+strconv.Itoa(i))
		e.register(b, be)
		e.base = append(e.base, be)
	}
	runner := ocftest.NewRunner(b, New(), ocftest.Config{Name: "haproxy-dynamic",
		Params: map[string]string{
			"routes": "web=" + e.listen + "/http", "consul_address": cl.HTTPAddr(0), "state_dir": e.stateDir,
			// Ten slots hold the permanent instances, the churned one and
			// those still draining, so the benchmark never measures a
			// slot-growing reload.
			"slots": "10", "drain_period": "5s", "hard_stop_after": "5s",
		},
		Env: map[string]string{"HA_RSCTMP": dir, "OCF_RESKEY_CRM_meta_timeout": "30000"}})
	if res := runner.Run(ocf.ActionStart, nil); res.Code != ocf.Success {
		b.Fatalf("start = %v (%s)\n%s", res.Code, res.Reason, res.Stderr)
	}
	b.Cleanup(func() {
		if res := runner.Run(ocf.ActionStop, nil); res.Code != ocf.Success {
			b.Errorf("stop at cleanup: %v %s", res.Code, res.Reason)
		}
	})
	for _, be := range e.base {
		if _, err := awaitServer(e.socket, be.addr, isServing, benchChangeTimeout); err != nil {
			b.Fatalf("permanent instance %s: %v", be.id, err)
		}
	}
	return e
}

func (e *benchEnv) register(tb testing.TB, be *benchBackend) {
	tb.Helper()
	reg := &api.AgentServiceRegistration{ID: be.id, Name: "web", Address: be.addr.Addr().String(), Port: int(be.addr.Port())}
	if err := e.consul.Agent().ServiceRegister(reg); err != nil {
		tb.Fatal(err)
	}
}

func (e *benchEnv) deregister(tb testing.TB, be *benchBackend) {
	tb.Helper()
	if err := e.consul.Agent().ServiceDeregister(be.id); err != nil {
		tb.Fatal(err)
	}
}

// benchPropagation times registrations and deregistrations of a pool of
// live instances, each until HAProxy's runtime state shows it.
func (e *benchEnv) benchPropagation(b *testing.B) {
	pool := make([]*benchBackend, 5)
	for i := range pool {
		pool[i] = startBenchBackend(b, "prop-"+strconv.Itoa(i))
	}
	var add, remove []time.Duration
	deadline := time.Now().Add(benchPhaseCap)
	for range b.N {
		for i := 0; i < benchChanges && time.Now().Before(deadline); i++ {
			be := pool[i%len(pool)]
			start := time.Now()
			e.register(b, be)
			_, err := awaitServer(e.socket, be.addr, isServing, benchChangeTimeout)
			if err != nil {
				b.Errorf("registration of %s: %v", be.id, err)
			}
			add = append(add, time.Since(start))
			start = time.Now()
			e.deregister(b, be)
			if _, err := awaitServer(e.socket, be.addr, notServing, benchChangeTimeout); err != nil {
				b.Errorf("deregistration of %s: %v", be.id, err)
			}
			remove = append(remove, time.Since(start))
		}
	}
	if len(add) < benchChanges*b.N {
		b.Logf("WARNING: the time cap ended the phase after %d of %d registrations", len(add), benchChanges*b.N)
	}
	all := append(slices.Clone(add), remove...)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(len(all)), "changes")
	b.ReportMetric(ms(percentile(all, 50)), "ms-p50")
	b.ReportMetric(ms(percentile(all, 99)), "ms-p99")
	b.ReportMetric(ms(percentile(add, 99)), "ms-p99-add")
	b.ReportMetric(ms(percentile(remove, 99)), "ms-p99-remove")
	b.Logf("propagation, Consul change to HAProxy's runtime state, %d changes: p50 %.1f ms, p99 %.1f ms, max %.1f ms "+
		"(registrations p50 %.1f p99 %.1f, deregistrations p50 %.1f p99 %.1f); goal p99 < 100 ms",
		len(all), ms(percentile(all, 50)), ms(percentile(all, 99)), ms(percentile(all, 100)),
		ms(percentile(add, 50)), ms(percentile(add, 99)), ms(percentile(remove, 50)), ms(percentile(remove, 99)))
}

// churner is one way of making a proxy follow instances.
type churner interface {
	// add returns once the proxy sends new requests to be.
	add(tb testing.TB, be *benchBackend) error
	// remove returns once the proxy sends no new requests to be, and a
	// function that waits until no request can reach be any more: then
	// be may stop, as a real service stops once drained.
	remove(tb testing.TB, be *benchBackend) (drained func() error, err error)
}

func (e *benchEnv) benchZeroDrop(b *testing.B) {
	rl := newReloadProxy(b, e.dir, e.base)
	dyn := &dynamicChurner{e: e}
	var dynRes, relRes loadResult
	for range b.N {
		dynRes.merge(churnUnderLoad(b, "dynamic", "http://"+e.listen+"/", dyn))
		relRes.merge(churnUnderLoad(b, "reload", "http://"+rl.listen+"/", rl))
	}
	b.ReportMetric(0, "ns/op")
	for _, v := range []struct {
		name string
		r    *loadResult
	}{{"dynamic", &dynRes}, {"reload", &relRes}} {
		b.ReportMetric(float64(v.r.failed), "failed-"+v.name)
		b.ReportMetric(float64(v.r.requests()), "requests-"+v.name)
		b.ReportMetric(float64(v.r.changes), "changes-"+v.name)
		b.ReportMetric(ms(percentile(v.r.latency, 50)), "p50-ms-"+v.name)
		b.ReportMetric(ms(percentile(v.r.latency, 99)), "p99-ms-"+v.name)
		b.Logf("%-7s %d changes in %.1f s: %d requests, %d failed (%.3f%%) %s; latency p50 %.2f ms, p99 %.2f ms, max %.1f ms",
			v.name, v.r.changes, v.r.elapsed.Seconds(), v.r.requests(), v.r.failed, 100*float64(v.r.failed)/float64(max(v.r.requests(), 1)), v.r.errorSummary(),
			ms(percentile(v.r.latency, 50)), ms(percentile(v.r.latency, 99)), ms(percentile(v.r.latency, 100)))
	}
	// A ratio over zero failures divides by one: "at least this many
	// times more".
	failRatio := float64(relRes.failed) / float64(max(dynRes.failed, 1))
	p99Ratio := ms(percentile(relRes.latency, 99)) / max(ms(percentile(dynRes.latency, 99)), 0.001)
	b.ReportMetric(failRatio, "failed-ratio-reload/dynamic")
	b.ReportMetric(p99Ratio, "p99-ratio-reload/dynamic")
	b.Logf("reload / dynamic: failed %d / %d (ratio %.1f, zero counted as one), p99 %.2f / %.2f ms (ratio %.2f)",
		relRes.failed, dynRes.failed, failRatio, ms(percentile(relRes.latency, 99)), ms(percentile(dynRes.latency, 99)), p99Ratio)
}

// churnUnderLoad runs the load generator against url while c adds,
// drains and removes benchChurn instances, one added and the previous
// one removed each benchChurnPeriod.
func churnUnderLoad(tb testing.TB, name, url string, c churner) loadResult {
	tb.Helper()
	began := time.Now()
	deadline := began.Add(benchPhaseCap)
	load := startLoad(url, deadline)
	var wg sync.WaitGroup
	changes := 0
	awaitDrainThenStop := func(be *benchBackend, drained func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := drained(); err != nil {
				tb.Errorf("%s: drain of %s: %v", name, be.id, err)
			}
			be.stop()
		}()
	}
	var prev *benchBackend
	for i := 0; i < benchChurn && time.Now().Before(deadline); i++ {
		start := time.Now()
		be := startBenchBackend(tb, name+"-"+strconv.Itoa(i))
		if err := c.add(tb, be); err != nil {
			tb.Errorf("%s: adding %s: %v", name, be.id, err)
		}
		changes++
		if prev != nil {
			drained, err := c.remove(tb, prev)
			if err != nil {
				tb.Errorf("%s: removing %s: %v", name, prev.id, err)
			}
			changes++
			awaitDrainThenStop(prev, drained)
		}
		prev = be
		time.Sleep(time.Until(start.Add(benchChurnPeriod)))
	}
	if prev != nil {
		drained, err := c.remove(tb, prev)
		if err != nil {
			tb.Errorf("%s: removing %s: %v", name, prev.id, err)
		}
		changes++
		awaitDrainThenStop(prev, drained)
	}
	wg.Wait() // each drain wait is bounded by benchDrainTimeout
	res := load.stop()
	res.changes, res.elapsed = changes, time.Since(began)
	if changes < 2*benchChurn {
		// A loaded host, not a fault: the numbers stand, over fewer
		// changes, and the metrics say how many.
		tb.Logf("%s: WARNING: the time cap ended the phase after %d of %d changes", name, changes, 2*benchChurn)
	}
	return res
}

// dynamicChurner changes instances in Consul, and haproxy-dynamic follows.
type dynamicChurner struct{ e *benchEnv }

func (d *dynamicChurner) add(tb testing.TB, be *benchBackend) error {
	d.e.register(tb, be)
	_, err := awaitServer(d.e.socket, be.addr, isServing, benchChangeTimeout)
	return err
}

func (d *dynamicChurner) remove(tb testing.TB, be *benchBackend) (func() error, error) {
	d.e.deregister(tb, be)
	_, err := awaitServer(d.e.socket, be.addr, notServing, benchChangeTimeout)
	return func() error {
		_, err := awaitServer(d.e.socket, be.addr, gone, benchDrainTimeout)
		return err
	}, err
}

// reloadProxy is the baseline, the consul-template way: a plain HAProxy,
// master-worker, with the same binary, renderer and settings as the
// agent's, whose whole configuration is rendered with the current
// instances, checked (haproxy -c) and reloaded (SIGUSR2 to the master) on
// every change. The listening sockets pass to the new worker (expose-fd
// listeners), as in a careful consul-template setup. Consul is left out:
// its latency would only lengthen the baseline's changes.
//
// A reload counts as done when the master answers on its CLI with one
// more reload and the new worker answers on the stats socket, as
// "systemctl reload" of a Type=notify unit waits for. The wait matters:
// HAProxy 2.6's master loses a SIGUSR2 that arrives while it is still
// re-executing for the previous one.
type reloadProxy struct {
	cfg       *watcher.Config
	log       string
	master    string // the master CLI socket
	listen    string
	socket    haproxyapi.Client
	instances []*benchBackend
}

func newReloadProxy(tb testing.TB, dir string, base []*benchBackend) *reloadProxy {
	tb.Helper()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		tb.Fatal(err)
	}
	if haproxy, err = filepath.Abs(haproxy); err != nil {
		tb.Fatal(err)
	}
	d := filepath.Join(dir, "r")
	if err := os.MkdirAll(d, 0o700); err != nil {
		tb.Fatal(err)
	}
	r := &reloadProxy{listen: "127.0.0.1:" + strconv.Itoa(consultest.FreePorts(tb, 1)[0]), instances: slices.Clone(base),
		log: filepath.Join(d, "haproxy.log"), master: filepath.Join(d, "master.sock")}
	rs, err := routes.Parse("web=" + r.listen + "/http")
	if err != nil {
		tb.Fatal(err)
	}
	// The agent's defaults, and the benchmark's hard_stop_after.
	r.cfg = &watcher.Config{
		Settings: haproxycfg.Settings{Routes: rs, Socket: filepath.Join(d, "admin.sock"), StateFile: filepath.Join(d, "server-state"),
			Slots: 1, HardStopAfter: 5 * time.Second, TimeoutConnect: 5 * time.Second, TimeoutIdle: 5 * time.Minute},
		Haproxy: haproxy, ConfigFile: filepath.Join(d, "haproxy.cfg"), MasterPIDFile: filepath.Join(d, "haproxy.pid"),
	}
	r.socket = haproxyapi.Client{Socket: r.cfg.Socket, Timeout: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := watcher.Install(ctx, r.cfg, r.backends()); err != nil {
		tb.Fatal(err)
	}
	master, err := process.StartDaemon(ctx, process.Daemon{Path: haproxy, Args: []string{"-W", "-db", "-f", r.cfg.ConfigFile, "-S", r.master},
		PIDFile: r.cfg.MasterPIDFile, LogFile: r.log})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := process.StopGroup(ctx, master, process.StopOptions{Signal: syscall.SIGUSR1, Grace: 7 * time.Second}); err != nil {
			tb.Errorf("stopping the baseline haproxy: %v", err)
		}
	})
	if err := r.awaitWorker(ctx, -1); err != nil {
		tb.Fatalf("the baseline haproxy did not start: %v; its log ends: %s", err, logTail(r.log, 5))
	}
	return r
}

func (r *reloadProxy) backends() map[string]haproxycfg.Backend {
	var be haproxycfg.Backend
	for i, in := range r.instances {
		be.Servers = append(be.Servers, haproxycfg.Server{Slot: i + 1, Addr: in.addr})
	}
	return map[string]haproxycfg.Backend{"web": be}
}

// procs is the master's "show proc": its reload count, its current
// worker and its old workers, still finishing their sessions.
type procs struct {
	reloads int
	current int
	old     []int
}

// showProc asks the master CLI. The master keeps a connection open after
// answering unless its client closes its side first.
func (r *reloadProxy) showProc(ctx context.Context) (procs, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", r.master)
	if err != nil {
		return procs{}, err
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	if _, err := io.WriteString(conn, "show proc\n"); err != nil {
		return procs{}, err
	}
	_ = conn.(*net.UnixConn).CloseWrite()
	out, err := io.ReadAll(io.LimitReader(conn, 1<<20))
	if err != nil {
		return procs{}, err
	}
	return parseShowProc(string(out))
}

func parseShowProc(out string) (procs, error) {
	var p procs
	section := ""
	master := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "# ") {
			section = line
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(line, "#") {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		switch {
		case f[1] == "master":
			master = true
			if p.reloads, err = strconv.Atoi(f[2]); err != nil {
				return p, fmt.Errorf("show proc: master line %q", line)
			}
		case f[1] == "worker" && section == "# workers":
			p.current = pid
		case f[1] == "worker" && section == "# old workers":
			p.old = append(p.old, pid)
		}
	}
	if !master {
		return p, fmt.Errorf("show proc: no master in %q", out)
	}
	return p, nil
}

// awaitWorker waits until the master has done more than reloads reloads
// and has a current worker, and that worker answers on the stats socket.
func (r *reloadProxy) awaitWorker(ctx context.Context, reloads int) error {
	var p procs
	var err error
	for range 10_000 { // the count bound behind ctx's
		if p, err = r.showProc(ctx); err == nil && p.reloads > reloads && p.current > 0 {
			if info, ierr := r.socket.Info(ctx); ierr == nil && info["Pid"] == strconv.Itoa(p.current) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no new worker answered (last show proc: %+v, error %v): %w", p, err, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	return fmt.Errorf("no new worker answered (last show proc: %+v, error %v)", p, err)
}

// reload installs the configuration for the current instances, reloads,
// and returns the workers that ran before.
func (r *reloadProxy) reload() ([]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), benchChangeTimeout)
	defer cancel()
	before, err := r.showProc(ctx)
	if err != nil {
		return nil, err
	}
	if err := watcher.Install(ctx, r.cfg, r.backends()); err != nil {
		return nil, err
	}
	pid, err := process.ReadPIDFile(r.cfg.MasterPIDFile)
	if err != nil {
		return nil, err
	}
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		return nil, err
	}
	if err := r.awaitWorker(ctx, before.reloads); err != nil {
		return nil, fmt.Errorf("reload: %w; HAProxy's log ends: %s", err, logTail(r.log, 5))
	}
	return append(before.old, before.current), nil
}

func (r *reloadProxy) add(_ testing.TB, be *benchBackend) error {
	r.instances = append(r.instances, be)
	_, err := r.reload()
	return err
}

func (r *reloadProxy) remove(_ testing.TB, be *benchBackend) (func() error, error) {
	r.instances = slices.DeleteFunc(r.instances, func(in *benchBackend) bool { return in == be })
	// Every worker that ran before this reload may still send requests
	// to be, until it has finished its sessions and exited.
	old, err := r.reload()
	return func() error {
		deadline := time.Now().Add(benchDrainTimeout)
		for _, pid := range old {
			for {
				alive, err := process.Alive(pid)
				if err != nil || !alive {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("old worker %d still runs after %v", pid, benchDrainTimeout)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		return nil
	}, err
}

// logTail is the last n lines of file, joined with " | ".
func logTail(file string, n int) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}

// benchBackend is a live HTTP instance answering its id.
type benchBackend struct {
	id   string
	addr netip.AddrPort
	srv  *http.Server
	once sync.Once
}

func startBenchBackend(tb testing.TB, id string) *benchBackend {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	be := &benchBackend{id: id, addr: l.Addr().(*net.TCPAddr).AddrPort(),
		srv: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, id) })}}
	go be.srv.Serve(l)
	tb.Cleanup(be.stop)
	return be
}

// stop ends the instance as a drained service ends: gracefully, finishing
// what is in flight, for at most a second.
func (be *benchBackend) stop() {
	be.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if be.srv.Shutdown(ctx) != nil {
			be.srv.Close()
		}
	})
}

func isServing(s *haproxyapi.ServerState) bool  { return s != nil && s.Serving() && s.OpState == 2 }
func notServing(s *haproxyapi.ServerState) bool { return s == nil || !s.Serving() }
func gone(s *haproxyapi.ServerState) bool       { return s == nil || s.Maint() }

// awaitServer polls HAProxy's runtime state until the server holding addr
// in backend be_web (nil when none) satisfies cond, and returns how long
// that took.
func awaitServer(hc haproxyapi.Client, addr netip.AddrPort, cond func(*haproxyapi.ServerState) bool, within time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var lastErr error
	// One poll costs a socket round trip, about 0.2 ms; the count bound
	// backs up the time bound.
	for range int(within / time.Millisecond) {
		servers, err := hc.ServersState(ctx, haproxycfg.BackendName("web"))
		lastErr = err
		if err == nil {
			var found *haproxyapi.ServerState
			for i := range servers {
				// Several slots may hold addr (a drained one in maintenance
				// and a refilled one): the serving one decides.
				if servers[i].Addr == addr && (found == nil || servers[i].Serving()) {
					found = &servers[i]
				}
			}
			if cond(found) {
				return time.Since(start), nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("%s not in the wanted state after %v (last error: %v)", addr, within, lastErr)
		case <-time.After(time.Millisecond):
		}
	}
	return time.Since(start), fmt.Errorf("%s not in the wanted state after %d polls", addr, int(within/time.Millisecond))
}

// loadResult is what the load generator saw.
type loadResult struct {
	latency []time.Duration // of successful requests
	failed  int
	errs    map[string]int // failures by kind
	sample  map[string]string
	changes int
	elapsed time.Duration
}

func (r *loadResult) requests() int { return len(r.latency) + r.failed }

func (r *loadResult) merge(o loadResult) {
	r.latency = append(r.latency, o.latency...)
	r.failed += o.failed
	r.changes += o.changes
	r.elapsed += o.elapsed
	for k, n := range o.errs {
		if r.errs == nil {
			r.errs, r.sample = map[string]int{}, map[string]string{}
		}
		r.errs[k] += n
		if _, ok := r.sample[k]; !ok {
			r.sample[k] = o.sample[k]
		}
	}
}

func (r *loadResult) errorSummary() string {
	if r.failed == 0 {
		return "(none)"
	}
	var parts []string
	for k, n := range r.errs {
		parts = append(parts, fmt.Sprintf("%s %d, e.g. %q", k, n, r.sample[k]))
	}
	slices.Sort(parts)
	return "(" + strings.Join(parts, "; ") + ")"
}

type loadGen struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	res   []loadResult
}

// startLoad starts benchWorkers closed-loop workers against url until
// stop, the deadline, or benchMaxRequests in all.
//
// Keep-alive is off: every request opens a new connection to HAProxy,
// as a fleet of short-lived clients does, so every request meets the
// listener handover of a reload and a fresh balancing decision. With
// keep-alive on, a request on a connection that an old worker closes is
// silently retried by net/http (GET is idempotent), which would hide
// exactly the failures this measures.
func startLoad(url string, deadline time.Time) *loadGen {
	g := &loadGen{stopc: make(chan struct{}), res: make([]loadResult, benchWorkers)}
	for w := range benchWorkers {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			c := &http.Client{Timeout: benchRequestTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
			res := &g.res[w]
			res.latency = make([]time.Duration, 0, benchMaxRequests/benchWorkers)
			for range benchMaxRequests / benchWorkers {
				select {
				case <-g.stopc:
					return
				default:
				}
				if time.Now().After(deadline) {
					return
				}
				start := time.Now()
				kind, err := get(c, url)
				if err != nil {
					res.failed++
					if res.errs == nil {
						res.errs, res.sample = map[string]int{}, map[string]string{}
					}
					res.errs[kind]++
					if _, ok := res.sample[kind]; !ok {
						res.sample[kind] = err.Error()
					}
					continue
				}
				res.latency = append(res.latency, time.Since(start))
			}
		}()
	}
	return g
}

func (g *loadGen) stop() loadResult {
	close(g.stopc)
	g.wg.Wait()
	var all loadResult
	for _, r := range g.res {
		all.merge(r)
	}
	return all
}

// get sends one request and classifies a failure.
func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return "refused", err
		case errors.Is(err, syscall.ECONNRESET):
			return "reset", err
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return "eof", err
		case errors.As(err, &ne) && ne.Timeout():
			return "timeout", err
		}
		return "other", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return "body", err
	case resp.StatusCode != http.StatusOK:
		return "status " + strconv.Itoa(resp.StatusCode), fmt.Errorf("status %d: %.80s", resp.StatusCode, body)
	case len(body) == 0:
		return "empty", errors.New("empty answer")
	}
	return "", nil
}

// benchWatcherIdle reads the watcher's memory, and its CPU over
// benchIdle without changes or traffic (its 1 s tick and the blocking
// queries still run).
func (e *benchEnv) benchWatcherIdle(b *testing.B) {
	pid, err := process.ReadPIDFile(filepath.Join(e.stateDir, "watcher.pid"))
	if err != nil {
		b.Fatal(err)
	}
	var cpu []float64
	var ticks int64
	for range b.N {
		t0, c0, err := cpuTicks(pid)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(benchIdle)
		t1, c1, err := cpuTicks(pid)
		if err != nil {
			b.Fatal(err)
		}
		ticks += c1 - c0
		cpu = append(cpu, 100*float64(c1-c0)/clockTicks/t1.Sub(t0).Seconds())
	}
	rss, hwm, err := memory(pid)
	if err != nil {
		b.Fatal(err)
	}
	idle := 0.0
	for _, c := range cpu {
		idle += c / float64(len(cpu))
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(rss/1024, "rss-MB")
	b.ReportMetric(hwm/1024, "rss-peak-MB")
	b.ReportMetric(idle, "cpu-idle-%")
	b.Logf("watcher (pid %d, this test binary): VmRSS %.1f MB, VmHWM %.1f MB after the benchmarks (goal < 20 MB); "+
		"CPU while idle %.3f%% of one core (%d ticks of %d ms in %d × %v)",
		pid, rss/1024, hwm/1024, idle, ticks, 1000/clockTicks, b.N, benchIdle)
}

// cpuTicks returns utime+stime of pid, in clock ticks, and when it was
// read.
func cpuTicks(pid int) (time.Time, int64, error) {
	now := time.Now()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return now, 0, err
	}
	// The command name, field 2, may hold spaces and parentheses: fields
	// are counted after its closing parenthesis, where field 3 starts.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return now, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return now, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return now, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return now, utime + stime, nil
}

// memory returns VmRSS and VmHWM of pid in kB.
func memory(pid int) (rss, hwm float64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return rss, hwm, nil
}

// percentile is the nearest-rank p-th percentile of ds (p in 0..100), 0
// for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
