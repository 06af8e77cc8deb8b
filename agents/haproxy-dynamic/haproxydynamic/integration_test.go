//go:build integration

package haproxydynamic

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxyapi"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/watcher"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/ocf/process"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// These tests run the agent in-process with a real HAProxy (Debian's),
// a real Consul dev agent and real HTTP backends, all on loopback ports
// picked free. The watcher is this test binary (see TestMain).

func needHAProxy(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy not installed (apt-get install haproxy): integration tests need the real one")
	}
}

// backend is an HTTP server answering its own id.
func backend(t *testing.T, id string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, id) })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

type fixture struct {
	t      *testing.T
	consul *consultest.Cluster
	api    *api.Client
	listen string
	runner *ocftest.Runner
	params map[string]string
	dir    string
}

func newFixture(t *testing.T, extra map[string]string) *fixture {
	t.Helper()
	return newFixtureRoute(t, "/http", extra)
}

// newFixtureRoute is newFixture with the route web's options (after its
// listen address) given.
func newFixtureRoute(t *testing.T, options string, extra map[string]string) *fixture {
	t.Helper()
	needHAProxy(t)
	cl := consultest.StartServer(t, &consultest.Options{Dev: true})
	cfg := api.DefaultConfig()
	cfg.Address = cl.HTTPAddr(0)
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	port := consultest.FreePorts(t, 1)[0]
	f := &fixture{t: t, consul: cl, api: client, listen: "127.0.0.1:" + strconv.Itoa(port), dir: t.TempDir()}
	f.params = map[string]string{
		"routes": "web=" + f.listen + options, "consul_address": cl.HTTPAddr(0),
		"slots": "3", "drain_period": "1s", "hard_stop_after": "5s",
	}
	for k, v := range extra {
		f.params[k] = v
	}
	f.runner = ocftest.NewRunner(t, New(), ocftest.Config{Name: "haproxy-dynamic", Params: f.params,
		Env: map[string]string{"HA_RSCTMP": f.dir, "OCF_RESKEY_CRM_meta_timeout": "30000"}})
	t.Cleanup(func() {
		if res := f.runner.Run(ocf.ActionStop, nil); res.Code != ocf.Success {
			t.Errorf("stop at cleanup: %v %s", res.Code, res.Reason)
		}
	})
	return f
}

func (f *fixture) register(id string, port int, ttl bool) {
	f.t.Helper()
	reg := &api.AgentServiceRegistration{ID: id, Name: "web", Address: "127.0.0.1", Port: port}
	if ttl {
		reg.Check = &api.AgentServiceCheck{CheckID: id + "-ttl", TTL: "10m", Status: api.HealthPassing}
	}
	if err := f.api.Agent().ServiceRegister(reg); err != nil {
		f.t.Fatal(err)
	}
}

// awaitMonitor waits until the depth-0 monitor returns code with a reason
// containing reason.
func (f *fixture) awaitMonitor(code ocf.Code, reason string, within time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		res := f.runner.Run(ocf.ActionMonitor, map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"})
		if res.Code == code && strings.Contains(res.Reason, reason) {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("monitor = %v (%q) after %s, want %v with %q", res.Code, res.Reason, within, code, reason)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// awaitKept waits until the watcher's status shows service's route kept
// by none_passing=keep (since a known time), or no longer kept.
func (f *fixture) awaitKept(service string, kept bool, within time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		paths, _ := filepath.Glob(filepath.Join(f.dir, "*", "status.json"))
		if len(paths) == 1 {
			st, err := watcher.ReadStatus(paths[0])
			if err == nil && (len(st.Routes[service].Kept) > 0 && !st.Routes[service].KeptSince.IsZero()) == kept {
				return
			}
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("the watcher's status %v: route %s kept is not %v after %s", paths, service, kept, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *fixture) deregister(id string) {
	f.t.Helper()
	if err := f.api.Agent().ServiceDeregister(id); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) run(action string, extra map[string]string, want ...ocf.Code) ocftest.Result {
	f.t.Helper()
	res := f.runner.Run(action, extra)
	if !slices.Contains(want, res.Code) {
		f.t.Fatalf("%s = %v (%s), want %v\n%s", action, res.Code, res.Reason, want, res.Stderr)
	}
	return res
}

var deep = map[string]string{"OCF_RESKEY_CRM_meta_interval": "60000", "OCF_CHECK_LEVEL": "10"}

// hits sends n requests through HAProxy, each on a new connection, and
// counts the answers by backend id; failures count under "error".
func (f *fixture) hits(n int) map[string]int {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	got := map[string]int{}
	for range n {
		resp, err := c.Get("http://" + f.listen + "/")
		if err != nil {
			got["error"]++
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			got[fmt.Sprintf("status %d", resp.StatusCode)]++
			continue
		}
		got[string(b)]++
	}
	return got
}

func keys(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

// await polls until 12 requests reach exactly the backends want (a
// comma-separated sorted list) and returns how long it took.
func (f *fixture) await(want string, within time.Duration) time.Duration {
	f.t.Helper()
	start := time.Now()
	var last map[string]int
	for time.Since(start) < within {
		if last = f.hits(12); keys(last) == want {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("after %v requests reach %v, want exactly %s", within, last, want)
	return 0
}

func TestRouting(t *testing.T) {
	f := newFixture(t, nil)
	ports := map[string]int{}
	for _, id := range []string{"1", "2", "3", "4", "5", "6"} {
		ports[id] = backend(t, id)
	}
	f.register("web-1", ports["1"], false)
	f.register("web-2", ports["2"], true)

	start := time.Now()
	f.run(ocf.ActionStart, nil, ocf.Success)
	t.Logf("start took %v", time.Since(start).Round(time.Millisecond))
	t.Logf("initial instances routed %v after start", f.await("1,2", 5*time.Second).Round(time.Millisecond))
	f.run(ocf.ActionMonitor, deep, ocf.Success)

	f.register("web-3", ports["3"], true)
	t.Logf("propagation, instance added: %v", f.await("1,2,3", 5*time.Second).Round(time.Millisecond))

	f.deregister("web-1")
	t.Logf("propagation, instance deregistered: %v", f.await("2,3", 5*time.Second).Round(time.Millisecond))

	if err := f.api.Agent().UpdateTTL("web-2-ttl", "test fails it", api.HealthCritical); err != nil {
		t.Fatal(err)
	}
	t.Logf("propagation, check critical: %v", f.await("3", 5*time.Second).Round(time.Millisecond))
	f.run(ocf.ActionMonitor, deep, ocf.Success)

	// The last passing instance fails too: with none_passing=keep (the
	// default) HAProxy goes on routing to it rather than refusing every
	// request, and the monitor says so once that lasted
	// keep_degraded_after (default 60s; at once with 0).
	if err := f.api.Agent().UpdateTTL("web-3-ttl", "test fails it", api.HealthCritical); err != nil {
		t.Fatal(err)
	}
	f.awaitKept("web", true, 10*time.Second)
	f.run(ocf.ActionMonitor, map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"}, ocf.Success)
	now := map[string]string{"OCF_RESKEY_keep_degraded_after": "0"}
	if res := f.run(ocf.ActionMonitor, withParam(now, "OCF_RESKEY_CRM_meta_interval", "10000"), ocf.Degraded); !strings.Contains(res.Reason, "none_passing=keep") {
		t.Errorf("monitor with keep_degraded_after=0: %q, want it to name none_passing=keep", res.Reason)
	}
	if got := f.hits(30); keys(got) != "3" {
		t.Fatalf("with no instance passing, requests reach %v, want the last one, 3", got)
	}
	f.run(ocf.ActionMonitor, deep, ocf.Success)
	f.run(ocf.ActionMonitor, withParam(deep, "OCF_RESKEY_keep_degraded_after", "0"), ocf.Degraded)
	if err := f.api.Agent().UpdateTTL("web-3-ttl", "test heals it", api.HealthPassing); err != nil {
		t.Fatal(err)
	}
	f.awaitKept("web", false, 10*time.Second)
	f.awaitMonitor(ocf.Success, "", 10*time.Second)

	// Consul goes away: traffic keeps flowing to the last known instances.
	f.consul.Kill(0)
	if got := f.hits(30); keys(got) != "3" {
		t.Fatalf("with Consul down, requests reach %v, want only 3", got)
	}
	res := f.run(ocf.ActionMonitor, deep, ocf.Degraded)
	t.Logf("deep monitor with Consul down: %v %q", res.Code, res.Reason)
	deadline := time.Now().Add(10 * time.Second)
	for f.runner.Run(ocf.ActionMonitor, map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"}).Code != ocf.Degraded {
		if time.Now().After(deadline) {
			t.Fatal("depth-0 monitor does not report degraded 10 s after Consul went away")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := f.hits(30); keys(got) != "3" {
		t.Fatalf("after the watcher noticed Consul down, requests reach %v, want only 3", got)
	}

	// Consul comes back (a dev agent forgets its registrations): the
	// watcher catches up with what is registered now.
	f.consul.Restart(0)
	f.register("web-4", ports["4"], false)
	f.register("web-3", ports["3"], false)
	t.Logf("catch-up after Consul came back: %v", f.await("3,4", 20*time.Second).Round(time.Millisecond))
	deadline = time.Now().Add(10 * time.Second)
	for res = f.runner.Run(ocf.ActionMonitor, deep); res.Code != ocf.Success; res = f.runner.Run(ocf.ActionMonitor, deep) {
		if time.Now().After(deadline) {
			t.Fatalf("deep monitor after Consul came back: %v %q", res.Code, res.Reason)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// More instances than the 3 slots: a reload grows the backend.
	for _, id := range []string{"1", "2", "5", "6"} {
		f.register("web-"+id, ports[id], false)
	}
	t.Logf("six instances in three slots served after %v", f.await("1,2,3,4,5,6", 10*time.Second).Round(time.Millisecond))
	// The watcher writes its status after applying a change, so traffic
	// may reach the new slots a moment before the status counts the reload.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, err := watcher.ReadStatus(f.dir + "/haproxy-dynamic-ocftest.d/status.json")
		if err != nil {
			t.Fatal(err)
		}
		if st.Reloads >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status reports %d reloads 5 s after six instances were served in three slots, want at least 1", st.Reloads)
		}
	}
	f.run(ocf.ActionMonitor, deep, ocf.Success)

	// During traffic, route changes by reload-agent drop nothing.
	errs := make(chan map[string]int)
	go func() { errs <- f.hits(200) }()
	f.runner = ocftest.NewRunner(t, New(), ocftest.Config{Name: "haproxy-dynamic", Params: withParam(f.params, "routes", "web="+f.listen+"/http/leastconn"),
		Env: map[string]string{"HA_RSCTMP": f.dir, "OCF_RESKEY_CRM_meta_timeout": "30000"}})
	f.run(ocf.ActionReloadAgent, nil, ocf.Success)
	if got := <-errs; got["error"] > 0 || len(got) != 6 {
		t.Errorf("requests during reload-agent: %v, want all six backends and no errors", got)
	}
	f.run(ocf.ActionMonitor, deep, ocf.Success)

	f.run(ocf.ActionStop, nil, ocf.Success)
	if c, err := net.DialTimeout("tcp", f.listen, time.Second); err == nil {
		c.Close()
		t.Error("the route still accepts connections after stop")
	}
	f.run(ocf.ActionMonitor, nil, ocf.NotRunning)
}

func withParam(m map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for key, val := range m {
		out[key] = val
	}
	out[k] = v
	return out
}

func TestConformance(t *testing.T) {
	needHAProxy(t)
	cl := consultest.StartServer(t, &consultest.Options{Dev: true})
	port := consultest.FreePorts(t, 1)[0]
	ocftest.Conformance(t, New(), ocftest.Config{Name: "haproxy-dynamic",
		Params: map[string]string{"routes": "web=127.0.0.1:" + strconv.Itoa(port) + "/http", "consul_address": cl.HTTPAddr(0), "hard_stop_after": "5s"},
		Env:    map[string]string{"HA_RSCTMP": t.TempDir(), "OCF_RESKEY_CRM_meta_timeout": "30000"}})
}

// TestStartFailures runs the real HAProxy on inputs it must refuse.
func TestStartFailures(t *testing.T) {
	needHAProxy(t)
	cl := consultest.StartServer(t, &consultest.Options{Dev: true})
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := consultest.FreePorts(t, 1)[0]
	for _, tt := range []struct {
		name   string
		routes string
		want   ocf.Code
		reason string
	}{
		{"port in use", "web=" + busy.Addr().String(), ocf.InvalidArgs, "cannot listen on"},
		{"two routes on one port", fmt.Sprintf("a=%d,b=127.0.0.1:%d", free, free), ocf.Misconfigured, "both listen on"},
		{"address not on this node", "web=192.0.2.1:" + strconv.Itoa(free), ocf.InvalidArgs, "cannot listen on"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "haproxy-dynamic",
				Params: map[string]string{"routes": tt.routes, "consul_address": cl.HTTPAddr(0)},
				Env:    map[string]string{"HA_RSCTMP": t.TempDir()}})
			defer r.Run(ocf.ActionStop, nil)
			got := r.Run(ocf.ActionStart, nil)
			if got.Code != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Fatalf("start = %v %q, want %v with %q", got.Code, got.Reason, tt.want, tt.reason)
			}
		})
	}
}

// HAProxy's master re-executes itself after starting and at every reload
// (SIGUSR2), showing no arguments for a moment each time. The agent must
// see it running throughout: a start that read it as gone failed with
// "haproxy exited at start", fatal for the node.
func TestMasterSeenThroughReexec(t *testing.T) {
	f := newFixture(t, nil)
	f.run(ocf.ActionStart, nil, ocf.Success)
	pidFiles, err := filepath.Glob(filepath.Join(f.dir, "*.d", "haproxy.pid"))
	if err != nil || len(pidFiles) != 1 {
		t.Fatalf("haproxy pid file under %s: %v %v", f.dir, pidFiles, err)
	}
	// The agent finds the master by the identity recorded at start.
	status := func() (process.State, int, error) { return process.Status(pidFiles[0], nil) }
	if _, ok := process.ReadIdentity(pidFiles[0], mustPID(t, pidFiles[0])); !ok {
		t.Fatal("no identity recorded beside haproxy's pid file")
	}
	st, master, err := status()
	if err != nil || st != process.Running {
		t.Fatalf("haproxy after start: %v %v", st, err)
	}
	const reloads = 10
	checks := 0
	for i := 0; i < reloads; i++ {
		if err := syscall.Kill(master, syscall.SIGUSR2); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		// Bounded: 300 checks a reload, well past the re-exec.
		for j := 0; j < 300; j++ {
			st, pid, err := status()
			checks++
			if err != nil || st != process.Running || pid != master {
				t.Fatalf("reload %d, check %d: haproxy %v (pid %d, master %d): %v", i, j, st, pid, master, err)
			}
		}
	}
	t.Logf("%d reloads, %d status checks, master %d seen running at each", reloads, checks, master)
}

func mustPID(t *testing.T, pidfile string) int {
	t.Helper()
	pid, err := process.ReadPIDFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// An instance registered at the route's own listen address is not routed
// (HAProxy would connect to itself), and the monitor says so, degraded,
// while the other instances are served.
func TestMonitorReportsOwnListenerSkipped(t *testing.T) {
	f := newFixture(t, nil)
	f.register("web-b1", backend(t, "b1"), false)
	f.run(ocf.ActionStart, nil, ocf.Success)
	f.awaitMonitor(ocf.Success, "", 10*time.Second)
	_, port, _ := net.SplitHostPort(f.listen)
	n, _ := strconv.Atoi(port)
	f.register("web-loop", n, false)
	f.awaitMonitor(ocf.Degraded, "one of this resource's own listeners", 10*time.Second)
	f.await("b1", 5*time.Second)
}

// A checked route takes an instance out at its first failed connection
// (observe layer4, error-limit 1), not after its periodic checks fail
// (fall 3 × inter 2 s): a lost instance of a clone costs one request its
// connect timeout, instead of every request the balancer sends it until
// the checks or Consul notice.
func TestCheckedRouteMarksFailedInstanceDown(t *testing.T) {
	f := newFixtureRoute(t, "/http/check", nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	doomed := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "2") })}
	go doomed.Serve(l)
	t.Cleanup(func() { doomed.Close() })
	f.register("web-1", backend(t, "1"), false)
	f.register("web-2", l.Addr().(*net.TCPAddr).Port, false)
	f.run(ocf.ActionStart, nil, ocf.Success)
	f.await("1,2", 10*time.Second)
	socks, _ := filepath.Glob(filepath.Join(f.dir, "*", "admin.sock"))
	if len(socks) != 1 {
		t.Fatalf("runtime sockets under %s: %v, want one", f.dir, socks)
	}
	hc := haproxyapi.Client{Socket: socks[0], Timeout: 3 * time.Second}
	// Both instances up by their checks before the fault, so that only
	// a request's failure can take one out right after it.
	waitServers(t, hc, 10*time.Second, func(ss []haproxyapi.ServerState) bool {
		up := 0
		for _, s := range ss {
			if s.Serving() && s.OpState == 2 {
				up++
			}
		}
		return up == 2
	})
	doomed.Close() // connections to it are refused from now on
	// Round robin sends one of two requests to the closed instance; each
	// is retried on the other one (redispatch), so every request passes.
	if got := f.hits(4); got["1"] != 4 {
		t.Fatalf("requests after the close reached %v, want all 4 on instance 1", got)
	}
	// Right after those requests: the periodic checks (fall 3, inter 2s)
	// cannot have marked it down yet; the failed connection did.
	ss, err := hc.ServersState(context.Background(), "be_web")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	for _, s := range ss {
		if s.Addr.Port() == port && s.OpState != 0 {
			t.Errorf("closed instance %s has op state %d right after a failed connection, want 0 (down)", s.Addr, s.OpState)
		}
	}
}

// waitServers polls be_web's servers until ok.
func waitServers(t *testing.T, hc haproxyapi.Client, within time.Duration, ok func([]haproxyapi.ServerState) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ss, err := hc.ServersState(context.Background(), "be_web")
		if err == nil && ok(ss) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("be_web servers after %s: %+v (%v)", within, ss, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
