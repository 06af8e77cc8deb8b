//go:build integration

package haproxydynamic

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxyapi"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxycfg"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/watcher"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/ocf/process"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// BenchmarkHAProxyDynamicScale measures haproxy-dynamic at size, on one
// node: a real Consul dev agent, a real HAProxy and the agent run
// in-process (the watcher is this test binary, see TestMain), all on
// loopback.
//
//   - routes-1000x10: a thousand routes of ten passing instances each.
//   - route-1x10000: one route with ten thousand registered instances,
//     of which ten start critical, so that the backend's slots (grown to
//     10,000 in steps of 100) keep ten free.
//
// The instances live in Consul's catalog on made-up nodes, written with
// transactions of at most 128 operations (Consul's limit), a few at a
// time; nothing listens on their addresses, HAProxy does not check them.
// Once HAProxy serves every passing instance, the benchmark makes
// changes one after the other on random routes, in pairs: a passing
// instance turns critical and passes again, and a new instance is
// registered and deregistered. Each change is timed from the Consul
// write to HAProxy's runtime state ("show servers state") showing it.
// Reported per case:
//
//   - ms-p50, ms-p99 (and per kind): propagation of the changes.
//   - reloads: HAProxy reloads during the changes, all of which fit the
//     slots: the watcher's count and changes of HAProxy's worker pid.
//   - cpu-%: the watcher's CPU during the changes and while idle, in %
//     of one core; rss-MB and rss-peak-MB its resident memory.
//   - consul-qps: requests the watcher made to Consul per second,
//     counted by Consul itself (its Prometheus metrics of the HTTP API:
//     every GET but the benchmark's own metrics reads), during the
//     changes and while idle.
//
// Run it with
//
//	go test -tags integration -run '^$' -bench Scale -benchtime 1x ./agents/haproxy-dynamic/haproxydynamic/
//
// With -scale.profile DIR, the watcher's CPU and heap profiles of each
// case are copied to DIR (go tool pprof DIR/routes-1000x10.cpu.pprof).
func BenchmarkHAProxyDynamicScale(b *testing.B) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		b.Skip("haproxy not installed (apt-get install haproxy): the benchmark needs the real one")
	}
	b.Run("routes-1000x10", func(b *testing.B) {
		runScale(b, scaleCase{routes: 1000, instances: 10, slots: 12, maxSlots: 1000, changes: 400, changeTimeout: benchChangeTimeout})
	})
	b.Run("route-1x10000", func(b *testing.B) {
		// Every change costs Consul an answer of all 10,000 instances:
		// seconds on a loaded host.
		runScale(b, scaleCase{routes: 1, instances: 10_000, critical: 10, slots: 100, maxSlots: 10_000, changes: 100,
			changeTimeout: 30 * time.Second})
	})
}

var scaleProfile = flag.String("scale.profile", "", "copy the watcher's CPU and heap profiles of each scale case to this folder")

// scaleCase is one size.
type scaleCase struct {
	routes    int
	instances int // registered per route
	critical  int // of them, registered critical
	slots     int // the slots parameter: the step by which backends grow
	maxSlots  int
	changes   int // timed changes, in pairs
	// changeTimeout bounds the wait for one change to show in HAProxy.
	changeTimeout time.Duration
}

const (
	// scaleNodes is how many made-up Consul nodes hold the instances.
	scaleNodes = 32
	// scaleTxnInstances instances take two operations each (service and
	// check): 128, Consul's limit per transaction.
	scaleTxnInstances = 64
	// scaleTxnParallel bounds the transactions in flight.
	scaleTxnParallel = 4
	// scaleSyncTimeout bounds the wait for HAProxy to serve every
	// instance after start; scalePhaseCap bounds the changes.
	scaleSyncTimeout = 150 * time.Second
	scalePhaseCap    = 60 * time.Second
	// scaleIdle outlasts the blocking queries' wait (consulWait, plus
	// Consul's jitter of up to a sixteenth), so that the idle figures
	// count each route's query ending without news once.
	scaleIdle = consulWait + 5*time.Second
	// scaleDrain is the drain_period: short, so that slots free again
	// soon, but longer than a change pair.
	scaleDrain = 2 * time.Second
)

// scaleInstance is one instance in the catalog.
type scaleInstance struct {
	route int
	id    string
	node  string
	addr  netip.AddrPort
}

type scaleEnv struct {
	sc       scaleCase
	consul   *api.Client
	url      string // Consul's HTTP API
	metrics  string // Consul's Prometheus metrics URL
	stateDir string
	socket   haproxyapi.Client
	// passing and critical are per route; the benchmark keeps them in
	// step with what it writes to Consul.
	passing  [][]*scaleInstance
	critical [][]*scaleInstance
	next     int // numbers new instances
	rng      *rand.Rand
}

func scaleService(route int) string { return fmt.Sprintf("svc%04d", route) }

func (e *scaleEnv) newInstance(route int) *scaleInstance {
	n := e.next
	e.next++
	// Unique addresses, none of them a listener of HAProxy: 127.1.0.0/16
	// numbered by instance, port by route.
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1 + byte(n>>16), byte(n >> 8), byte(n)}), uint16(20000+route%10000))
	return &scaleInstance{route: route, id: fmt.Sprintf("%s-%d", scaleService(route), n),
		node: "bench-node-" + strconv.Itoa(n%scaleNodes), addr: addr}
}

func (in *scaleInstance) serviceOp(verb api.ServiceOp) *api.TxnOp {
	return &api.TxnOp{Service: &api.ServiceTxnOp{Verb: verb, Node: in.node, Service: api.AgentService{
		ID: in.id, Service: scaleService(in.route), Address: in.addr.Addr().String(), Port: int(in.addr.Port())}}}
}

func (in *scaleInstance) checkOp(status string) *api.TxnOp {
	return &api.TxnOp{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{
		Node: in.node, CheckID: "check:" + in.id, Name: "bench", Status: status,
		ServiceID: in.id, ServiceName: scaleService(in.route)}}}
}

func (e *scaleEnv) txn(ops api.TxnOps) error {
	ok, resp, _, err := e.consul.Txn().Txn(ops, nil)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("transaction refused: %+v", resp.Errors)
	}
	return nil
}

// register writes every instance into the catalog, in transactions of
// scaleTxnInstances, scaleTxnParallel at a time.
func (e *scaleEnv) register(b *testing.B) {
	var nodes api.TxnOps
	for i := range scaleNodes {
		nodes = append(nodes, &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.NodeSet,
			Node: api.Node{Node: "bench-node-" + strconv.Itoa(i), Address: "127.0.0.1"}}})
	}
	if err := e.txn(nodes); err != nil {
		b.Fatal(err)
	}
	var all [][]*api.TxnOp
	var batch api.TxnOps
	for r := range e.sc.routes {
		for i := range e.sc.instances {
			in := e.newInstance(r)
			status := api.HealthPassing
			if i < e.sc.critical {
				status = api.HealthCritical
				e.critical[r] = append(e.critical[r], in)
			} else {
				e.passing[r] = append(e.passing[r], in)
			}
			batch = append(batch, in.serviceOp(api.ServiceSet), in.checkOp(status))
			if len(batch) == 2*scaleTxnInstances {
				all, batch = append(all, batch), nil
			}
		}
	}
	if len(batch) > 0 {
		all = append(all, batch)
	}
	start := time.Now()
	sem := make(chan struct{}, scaleTxnParallel)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for _, ops := range all {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := e.txn(ops); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	b.ReportMetric(time.Since(start).Seconds(), "register-s")
	b.Logf("registered %d instances (%d routes × %d) in %d transactions in %.2f s",
		e.sc.routes*e.sc.instances, e.sc.routes, e.sc.instances, len(all), time.Since(start).Seconds())
}

func runScale(b *testing.B, sc scaleCase) {
	// Short: HAProxy's socket path must stay <= 97 bytes.
	dir, err := os.MkdirTemp("/tmp", "hafw")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	cl := consultest.StartServer(b, &consultest.Options{Dev: true, LogLevel: "warn",
		// Cumulative request counts per method and path, for consul-qps.
		// Consul's default http_max_conns_per_client (200) is below one
		// blocking query per route at a thousand routes.
		ExtraHCL: `telemetry { prometheus_retention_time = "1h" disable_hostname = true }` + "\n" +
			fmt.Sprintf("limits { http_max_conns_per_client = %d }", max(200, sc.routes+200))})
	cfg := api.DefaultConfig()
	cfg.Address = cl.HTTPAddr(0)
	client, err := api.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	e := &scaleEnv{sc: sc, consul: client, url: "http://" + cl.HTTPAddr(0), metrics: "http://" + cl.HTTPAddr(0) + "/v1/agent/metrics?format=prometheus",
		stateDir: filepath.Join(dir, "d"), passing: make([][]*scaleInstance, sc.routes),
		critical: make([][]*scaleInstance, sc.routes), rng: rand.New(rand.NewPCG(1, 2))}
	e.socket = haproxyapi.Client{Socket: filepath.Join(e.stateDir, "admin.sock"), Timeout: 5 * time.Second}
	e.register(b)

	// A thousand free ports picked at random may lose one to another
	// program before HAProxy binds them all: then new ports, new try.
	newRunner := func() *ocftest.Runner {
		var rs []string
		for r, port := range consultest.FreePorts(b, sc.routes) {
			rs = append(rs, scaleService(r)+"=127.0.0.1:"+strconv.Itoa(port))
		}
		return ocftest.NewRunner(b, New(), ocftest.Config{Name: "haproxy-dynamic",
			Params: map[string]string{
				"routes": strings.Join(rs, ","), "consul_address": cl.HTTPAddr(0), "state_dir": e.stateDir,
				"slots": strconv.Itoa(sc.slots), "max_slots": strconv.Itoa(sc.maxSlots),
				"drain_period": scaleDrain.String(), "hard_stop_after": "5s",
			},
			Env: map[string]string{"HA_RSCTMP": dir, "OCF_RESKEY_CRM_meta_timeout": "120000"}})
	}
	runner := newRunner()
	if *scaleProfile != "" {
		if err := os.MkdirAll(e.stateDir, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.stateDir, profileTrigger), nil, 0o600); err != nil {
			b.Fatal(err)
		}
		name := strings.ReplaceAll(strings.TrimPrefix(b.Name(), "BenchmarkHAProxyDynamicScale/"), "/", "-")
		// Registered before the stop: runs after it, once the watcher
		// wrote its profiles.
		b.Cleanup(func() {
			if data, err := os.ReadFile(filepath.Join(e.stateDir, "watcher.memstats.txt")); err == nil {
				b.Logf("watcher memory at stop: %s", data)
			}
			for _, p := range []string{"cpu", "heap"} {
				data, err := os.ReadFile(filepath.Join(e.stateDir, "watcher."+p+".pprof"))
				if err == nil {
					err = os.WriteFile(filepath.Join(*scaleProfile, name+"."+p+".pprof"), data, 0o644)
				}
				if err != nil {
					b.Logf("watcher %s profile: %v", p, err)
				}
			}
		})
	}
	// Stop even after a failed start: it may have left HAProxy or the
	// watcher running.
	b.Cleanup(func() {
		if res := runner.Run(ocf.ActionStop, nil); res.Code != ocf.Success {
			b.Errorf("stop at cleanup: %v %s", res.Code, res.Reason)
		}
	})
	start := time.Now()
	for try := 1; ; try++ {
		res := runner.Run(ocf.ActionStart, nil)
		if res.Code == ocf.Success {
			break
		}
		if try == 3 || !strings.Contains(res.Reason, "failed to start their listeners") {
			b.Fatalf("start = %v (%s)\n%s", res.Code, res.Reason, res.Stderr)
		}
		b.Logf("start failed on a port taken meanwhile (%s); again with other ports", res.Reason)
		if res := runner.Run(ocf.ActionStop, nil); res.Code != ocf.Success {
			b.Fatalf("stop after a failed start: %v %s", res.Code, res.Reason)
		}
		runner = newRunner()
		start = time.Now()
	}
	want := 0
	for r := range sc.routes {
		want += len(e.passing[r])
	}
	if err := e.awaitServing(want, scaleSyncTimeout); err != nil {
		b.Fatalf("%v; the watcher's log ends: %s", err, logTail(filepath.Join(e.stateDir, "watcher.log"), 5))
	}
	b.ReportMetric(time.Since(start).Seconds(), "sync-s")
	b.Logf("HAProxy serves all %d passing instances %.1f s after start began", want, time.Since(start).Seconds())
	pid, err := process.ReadPIDFile(filepath.Join(e.stateDir, "watcher.pid"))
	if err != nil {
		b.Fatal(err)
	}

	// The status file lags the watcher by up to a tick: let it catch up
	// with the start's reloads, so that they are not counted below.
	time.Sleep(3 * time.Second)
	answer, size := e.consulAnswer(b)
	b.ReportMetric(ms(answer), "consul-answer-ms")
	b.Logf("one route's passing instances from Consul: %.1f MB in %.1f ms (median of 3 reads)", float64(size)/(1<<20), ms(answer))

	// The changes.
	before := e.snapshot(b, pid)
	times := map[string][]time.Duration{}
	deadline := time.Now().Add(scalePhaseCap)
	for range b.N {
		for i := 0; i < sc.changes/2 && time.Now().Before(deadline); i++ {
			route := e.rng.IntN(sc.routes)
			if i%2 == 0 {
				e.flip(b, route, times)
			} else {
				e.addRemove(b, route, times)
			}
		}
	}
	after := e.snapshot(b, pid)
	if after.reloads != before.reloads || after.worker != before.worker {
		b.Logf("reloads during the changes; the watcher's log says: %s", grepFile(filepath.Join(e.stateDir, "watcher.log"), "reloading", 5))
	}
	time.Sleep(scaleIdle)
	idle := e.snapshot(b, pid)

	var all []time.Duration
	kinds := slices.Sorted(func(yield func(string) bool) {
		for k := range times {
			if !yield(k) {
				return
			}
		}
	})
	var perKind []string
	for _, k := range kinds {
		all = append(all, times[k]...)
		perKind = append(perKind, fmt.Sprintf("%s p50 %.1f p99 %.1f", k, ms(percentile(times[k], 50)), ms(percentile(times[k], 99))))
		b.ReportMetric(ms(percentile(times[k], 99)), "ms-p99-"+k)
	}
	if len(all) < sc.changes*b.N {
		b.Logf("WARNING: the time cap ended the phase after %d of %d changes", len(all), sc.changes*b.N)
	}
	busy, quiet := after.since(before), idle.since(after)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(len(all)), "changes")
	b.ReportMetric(ms(percentile(all, 50)), "ms-p50")
	b.ReportMetric(ms(percentile(all, 99)), "ms-p99")
	b.ReportMetric(float64(busy.reloads), "reloads")
	b.ReportMetric(float64(busy.workerChanges), "worker-changes")
	b.ReportMetric(busy.cpu, "cpu-%")
	b.ReportMetric(quiet.cpu, "cpu-idle-%")
	b.ReportMetric(busy.qps, "consul-qps")
	b.ReportMetric(quiet.qps, "consul-qps-idle")
	b.ReportMetric(idle.rss/1024, "rss-MB")
	b.ReportMetric(idle.hwm/1024, "rss-peak-MB")
	b.Logf("%d routes × %d instances: %d changes in %.1f s, propagation p50 %.1f ms, p99 %.1f ms, max %.1f ms (%s); "+
		"reloads %d (worker changes %d); watcher CPU %.1f%% busy, %.2f%% idle; RSS %.1f MB, peak %.1f MB; "+
		"Consul requests by the watcher %.1f/s busy, %.1f/s idle",
		sc.routes, sc.instances, len(all), busy.elapsed.Seconds(), ms(percentile(all, 50)), ms(percentile(all, 99)), ms(percentile(all, 100)),
		strings.Join(perKind, ", "), busy.reloads, busy.workerChanges, busy.cpu, quiet.cpu, idle.rss/1024, idle.hwm/1024, busy.qps, quiet.qps)
}

// flip turns a passing instance of route critical, then passing again.
func (e *scaleEnv) flip(b *testing.B, route int, times map[string][]time.Duration) {
	ps := e.passing[route]
	if len(ps) == 0 {
		return
	}
	in := ps[e.rng.IntN(len(ps))]
	times["critical"] = append(times["critical"], e.change(b, route, in, notServing, in.checkOp(api.HealthCritical)))
	times["passing"] = append(times["passing"], e.change(b, route, in, isServing, in.checkOp(api.HealthPassing)))
}

// addRemove registers a new passing instance of route, then
// deregisters it.
func (e *scaleEnv) addRemove(b *testing.B, route int, times map[string][]time.Duration) {
	in := e.newInstance(route)
	times["add"] = append(times["add"], e.change(b, route, in, isServing, in.serviceOp(api.ServiceSet), in.checkOp(api.HealthPassing)))
	times["remove"] = append(times["remove"], e.change(b, route, in, notServing, in.serviceOp(api.ServiceDelete)))
}

// change writes ops in one transaction and returns how long until the
// server of in satisfies cond.
func (e *scaleEnv) change(b *testing.B, route int, in *scaleInstance, cond func(*haproxyapi.ServerState) bool, ops ...*api.TxnOp) time.Duration {
	start := time.Now()
	if err := e.txn(ops); err != nil {
		b.Fatal(err)
	}
	if err := awaitAddr(e.socket, haproxycfg.BackendName(scaleService(route)), in.addr, cond, e.sc.changeTimeout); err != nil {
		b.Errorf("%s: %v", in.id, err)
	}
	return time.Since(start)
}

// awaitServing waits until HAProxy serves n servers in all.
func (e *scaleEnv) awaitServing(n int, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	got := 0
	for range int(within / (200 * time.Millisecond)) {
		servers, err := e.socket.ServersState(ctx, "")
		if err == nil {
			got = 0
			for _, s := range servers {
				if isServing(&s) {
					got++
				}
			}
			if got == n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("HAProxy serves %d of %d instances after %v", got, n, within)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("HAProxy serves %d of %d instances after %v", got, n, within)
}

// awaitAddr polls "show servers state" of backend until the server that
// holds addr (nil when none; the serving one when several) satisfies
// cond. Only the lines that name addr's IP address are parsed: a
// backend of ten thousand servers answers in a megabyte.
func awaitAddr(hc haproxyapi.Client, backend string, addr netip.AddrPort, cond func(*haproxyapi.ServerState) bool, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	needle := " " + addr.Addr().String() + " "
	var lastErr error
	for range int(within / time.Millisecond) {
		began := time.Now()
		out, err := hc.Do(ctx, "show servers state "+backend)
		// Between polls, twice as long as a poll took: a backend of ten
		// thousand servers takes HAProxy milliseconds to list, and
		// polling back to back would starve the watcher's own commands.
		pause := max(time.Millisecond, 2*time.Since(began))
		lastErr = err
		if err == nil {
			var found *haproxyapi.ServerState
			lines := strings.SplitN(out, "\n", 3)
			if len(lines) == 3 {
				header := lines[0] + "\n" + lines[1] + "\n"
				for line := range strings.Lines(lines[2]) {
					if !strings.Contains(line, needle) {
						continue
					}
					st, err := haproxyapi.ParseServersState(header + line)
					if err != nil || len(st) != 1 || st[0].Addr != addr {
						continue
					}
					if found == nil || st[0].Serving() {
						found = &st[0]
					}
				}
				if cond(found) {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s in %s not in the wanted state after %v (last error: %v)", addr, backend, within, lastErr)
		case <-time.After(pause):
		}
	}
	return fmt.Errorf("%s in %s not in the wanted state after %d polls", addr, backend, int(within/time.Millisecond))
}

// scaleSnapshot is what the benchmark reads of the watcher, HAProxy and
// Consul at one time.
type scaleSnapshot struct {
	at       time.Time
	ticks    int64
	rss, hwm float64
	reloads  int
	worker   string
	gets     float64 // Consul GET requests but the benchmark's metrics reads
}

func (e *scaleEnv) snapshot(b *testing.B, pid int) scaleSnapshot {
	b.Helper()
	var s scaleSnapshot
	var err error
	if s.at, s.ticks, err = cpuTicks(pid); err != nil {
		b.Fatal(err)
	}
	if s.rss, s.hwm, err = memory(pid); err != nil {
		b.Fatal(err)
	}
	st, err := watcher.ReadStatus(filepath.Join(e.stateDir, "status.json"))
	if err != nil {
		b.Fatal(err)
	}
	s.reloads = st.Reloads
	info, err := e.socket.Info(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	s.worker = info["Pid"]
	if s.gets, err = consulGets(e.metrics); err != nil {
		b.Fatal(err)
	}
	return s
}

// scaleDelta is what happened between two snapshots.
type scaleDelta struct {
	elapsed       time.Duration
	cpu           float64 // % of one core
	qps           float64
	reloads       int
	workerChanges int
}

func (s scaleSnapshot) since(o scaleSnapshot) scaleDelta {
	d := scaleDelta{elapsed: s.at.Sub(o.at), reloads: s.reloads - o.reloads}
	d.cpu = 100 * float64(s.ticks-o.ticks) / clockTicks / d.elapsed.Seconds()
	d.qps = (s.gets - o.gets) / d.elapsed.Seconds()
	if s.worker != o.worker {
		d.workerChanges = 1
	}
	return d
}

// consulGets sums Consul's count of GET requests on every path but the
// metrics endpoint itself, from its Prometheus summaries: lines such as
// consul_api_http_count{method="GET",path="v1_health_service_"} 1234.
func consulGets(url string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return 0, fmt.Errorf("Consul metrics: HTTP %d: %s", resp.StatusCode, body)
	}
	var n float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "consul_api_http_count{") || !strings.Contains(line, `method="GET"`) ||
			strings.Contains(line, `path="v1_agent_metrics"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("Consul metrics: %q: %v", line, err)
		}
		n += v
	}
	return n, sc.Err()
}

// consulAnswer reads route 0's passing instances from Consul three times,
// as the watcher asks for them, and returns the median time and the size
// of the answer: what Consul spends on every change of that route.
func (e *scaleEnv) consulAnswer(b *testing.B) (time.Duration, int) {
	b.Helper()
	var times []time.Duration
	size := 0
	for range 3 {
		start := time.Now()
		resp, err := http.Get(e.url + "/v1/health/service/" + scaleService(0) + "?passing=1&stale=")
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		times, size = append(times, time.Since(start)), int(n)
	}
	return percentile(times, 50), size
}

// grepFile returns the last n lines of file that hold s, joined with
// " | ".
func grepFile(file, s string, n int) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	var hits []string
	for line := range strings.Lines(string(data)) {
		if strings.Contains(line, s) {
			hits = append(hits, strings.TrimSpace(line))
		}
	}
	return strings.Join(hits[max(len(hits)-n, 0):], " | ")
}
