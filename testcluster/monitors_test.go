//go:build integration

package testcluster

import (
	"context"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/nginxtest"
	"github.com/ha-framework/ha-framework/testcluster/harness"
	"github.com/ha-framework/ha-framework/testcluster/nofork"
	"github.com/ha-framework/ha-framework/testcluster/stackfiles"
)

// heartbeatDir holds resource-agents' shell agents.
const heartbeatDir = "/usr/lib/ocf/resource.d/heartbeat"

// monitored is one resource, started, whose recurring monitor a test or
// benchmark calls: one of our agents, or a shell agent of resource-agents.
type monitored struct {
	Name string   // as reported
	Path string   // the agent
	Env  []string // what Pacemaker would pass to a recurring depth-0 monitor
	Ours bool
	// Go marks the other Go binaries measured: the Go floor and an
	// older build of ours.
	Go bool
	// Peer names the shell agent that does the same work, "" for none.
	Peer string
}

// monitorFixture starts, on loopback, every service whose monitor the
// per-call benchmark and the no-fork test call, each through its agent's
// start (ours installed, as Pacemaker runs them, or from $HAFW_OCF_DIR;
// and resource-agents' shell agents where one exists for the same
// service), and stops them when the test ends. A service whose software is missing here is left out
// with a note in the log, never silently.
func monitorFixture(t testing.TB) []monitored {
	t.Helper()
	// HAFW_OCF_DIR measures other builds of the agents (bin/ after make
	// build) than the installed ones.
	ocfDir := harness.EnvOr("HAFW_OCF_DIR", ocfDir)
	for _, a := range []string{"consul", "directory-registration", "haproxy-dynamic", "openresty-gateway", "docker-service", "example"} {
		if _, err := os.Stat(filepath.Join(ocfDir, a)); err != nil {
			t.Fatalf("%v (run make install)", err)
		}
	}
	// Short: HAProxy's runtime socket path is limited to 97 bytes and the
	// gateway's state socket to 107, and t.TempDir's names are long.
	state, err := os.MkdirTemp("/tmp", "hafw-mc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	dir := t.TempDir()
	node, _ := os.Hostname()
	common := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT=/usr/lib/ocf", "HA_RSCTMP=" + state,
		"OCF_RESKEY_CRM_meta_on_node=" + node, "OCF_RESKEY_CRM_meta_timeout=60000"}
	var out []monitored
	add := func(m monitored, params map[string]string, extra ...string) {
		t.Helper()
		m.Env = append(append(append([]string{}, common...), "OCF_RESOURCE_INSTANCE=mc-"+m.Name), extra...)
		for k, v := range params {
			m.Env = append(m.Env, "OCF_RESKEY_"+k+"="+v)
		}
		ocfAction(t, m, "start")
		t.Cleanup(func() { ocfAction(t, m, "stop") })
		m.Env = append(m.Env, "OCF_RESKEY_CRM_meta_interval=10000")
		out = append(out, m)
	}

	// consul: a single server, started by our agent. No shell agent for
	// Consul exists in resource-agents.
	cparams, _ := consulServer(t, "mc", 1, nil)
	add(monitored{Name: "consul", Path: filepath.Join(ocfDir, "consul"), Ours: true}, cparams)
	consulAddr := "127.0.0.1:" + cparams["http_port"]

	// A backend for the registration, the proxy and the gateway.
	echo := nginxtest.NewEcho(t)
	echoPort := echo.Listener.Addr().(*net.TCPAddr).Port

	add(monitored{Name: "directory-registration", Path: filepath.Join(ocfDir, "directory-registration"), Ours: true},
		map[string]string{"consul_address": consulAddr, "service_name": "mc-web", "service_id": "mc-web-1",
			"service_port": strconv.Itoa(echoPort), "check_ttl": "30s", "drain_period": "0"})

	// haproxy-dynamic: resource-agents has no HAProxy agent.
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Logf("haproxy-dynamic left out: haproxy is not installed")
	} else {
		add(monitored{Name: "haproxy-dynamic", Path: filepath.Join(ocfDir, "haproxy-dynamic"), Ours: true},
			map[string]string{"consul_address": consulAddr, "routes": "mc-web=" + nginxtest.FreePort(t) + "/http"})
	}

	// openresty-gateway against heartbeat/nginx running a plain TLS nginx
	// with the same certificate.
	nginx := nginxtest.Binary(t)
	// A certificate for 127.0.0.1, its key (0600) and a JWT policy.
	files, err := stackfiles.Write(dir, dir, nil, "orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := files.Cert, files.Key
	add(monitored{Name: "openresty-gateway", Path: filepath.Join(ocfDir, "openresty-gateway"), Ours: true, Peer: "heartbeat/nginx"},
		map[string]string{"routes": "/orders/=orders=" + echo.URL, "listen": nginxtest.FreePort(t), "tls_cert_file": cert,
			"tls_key_file": key, "jwt_policy_file": files.Policy, "consul_address": consulAddr,
			"state_dir": filepath.Join(state, "gw"), "workers": "1"})
	add(monitored{Name: "heartbeat/nginx", Path: filepath.Join(heartbeatDir, "nginx")},
		map[string]string{"httpd": nginx, "configfile": plainNginx(t, dir, cert, key)})

	// docker-service against heartbeat/docker, on the same container.
	if img, why := dockerImage(t, dir); why != "" {
		t.Logf("docker-service and heartbeat/docker left out: %s", why)
	} else {
		port := nginxtest.FreePort(t)
		envFile := filepath.Join(dir, "service.env")
		if err := os.WriteFile(envFile, []byte("ADDR="+port+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		name := "hafw-mc-" + strconv.Itoa(os.Getpid())
		container := map[string]string{"image": img, "name": name}
		add(monitored{Name: "docker-service", Path: filepath.Join(ocfDir, "docker-service"), Ours: true, Peer: "heartbeat/docker"},
			map[string]string{"image": img, "name": name, "network": "host", "pull": "never", "env_file": envFile,
				"check_tcp": port, "docker_host": "unix:///var/run/docker.sock"})
		// heartbeat/docker finds the running container by name: its
		// start only checks it is up.
		out = append(out, monitored{Name: "heartbeat/docker", Path: filepath.Join(heartbeatDir, "docker"),
			Env: withParams(append(append([]string{}, common...), "OCF_RESOURCE_INSTANCE="+name, "OCF_RESKEY_CRM_meta_interval=10000"), container)})
	}

	// example against the shell Dummy: a state file each.
	add(monitored{Name: "example", Path: filepath.Join(ocfDir, "example"), Ours: true, Peer: "heartbeat/Dummy"},
		map[string]string{"label": "mc", "state": filepath.Join(dir, "example.state")})
	add(monitored{Name: "heartbeat/Dummy", Path: filepath.Join(heartbeatDir, "Dummy")},
		map[string]string{"state": filepath.Join(dir, "dummy.state")})
	return out
}

func withParams(env []string, params map[string]string) []string {
	for k, v := range params {
		env = append(env, "OCF_RESKEY_"+k+"="+v)
	}
	return env
}

// ocfAction runs action of m and fails the test unless it succeeds.
func ocfAction(t testing.TB, m monitored, action string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.Path, action)
	cmd.Env = m.Env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", m.Name, action, err, out)
	}
}

// plainNginx writes the configuration heartbeat/nginx runs: a TLS server
// with a health location, like the gateway's, on a free port.
func plainNginx(t testing.TB, dir, cert, key string) string {
	t.Helper()
	conf := filepath.Join(dir, "nginx.conf")
	body := fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[2]s ssl;
		ssl_certificate %[3]s;
		ssl_certificate_key %[4]s;
		location = /health { return 200 "ok\n"; }
	}
}
`, dir, nginxtest.FreePort(t), cert, key)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// dockerImage builds the docker-service tests' server FROM scratch into
// the local dockerd and returns its tag, or why it cannot.
func dockerImage(t testing.TB, dir string) (string, string) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		return "", "the docker CLI is not installed (apt-get install docker.io), and heartbeat/docker needs it"
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Started when none answers, as make e2e does.
	if out, err := exec.Command(filepath.Join(root, "testcluster/dockercluster/dockerd.sh")).CombinedOutput(); err != nil {
		return "", fmt.Sprintf("no dockerd answers and dockerd.sh cannot start one: %v %s", err, strings.TrimSpace(string(out)))
	}
	ctxDir := filepath.Join(dir, "image")
	if err := os.MkdirAll(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-ldflags", "-s -w",
		"-o", filepath.Join(ctxDir, "server"), "./agents/docker-service/dockerservice/testdata/server")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the test server: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nCOPY server /server\nCMD [\"/server\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const tag = "hafw-monitorcost:plain"
	cmd := exec.Command("docker", "build", "-q", "-t", tag, ctxDir)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	return tag, ""
}

// TestDepthZeroMonitorsForkNothing runs each of our agents' recurring
// depth-0 monitor against its running service under a seccomp filter that
// kills the agent with SIGSYS at its first attempt to create a process
// (testcluster/nofork): Pacemaker runs these monitors every few seconds
// for every resource, and a child process per call would be most of their
// cost. The monitor must succeed under it. The filter's own test shows
// that it kills a program that forks; the first subtest shows it here too,
// with the shell Dummy agent.
func TestDepthZeroMonitorsForkNothing(t *testing.T) {
	ms := monitorFixture(t)
	run := func(t *testing.T, m monitored) *os.ProcessState {
		cmd, err := nofork.Command(m.Path, "monitor")
		if err != nil {
			t.Skip(err)
		}
		cmd.Env = append(cmd.Env, m.Env...)
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil {
			t.Fatalf("%s monitor: %v\n%s", m.Name, err, out)
		}
		if !nofork.Killed(cmd.ProcessState) && !cmd.ProcessState.Success() {
			t.Fatalf("%s monitor failed: %v\n%s", m.Name, cmd.ProcessState, out)
		}
		return cmd.ProcessState
	}
	t.Run("the filter kills a forking monitor (heartbeat/Dummy)", func(t *testing.T) {
		for _, m := range ms {
			if m.Name == "heartbeat/Dummy" {
				if ps := run(t, m); !nofork.Killed(ps) {
					t.Errorf("heartbeat/Dummy monitor under the filter: %v, want killed by SIGSYS", ps)
				}
				return
			}
		}
		t.Fatal("no heartbeat/Dummy in the fixture")
	})
	for _, m := range ms {
		if !m.Ours {
			continue
		}
		t.Run(m.Name, func(t *testing.T) {
			if ps := run(t, m); nofork.Killed(ps) {
				t.Errorf("%s's depth-0 monitor created a process (killed by SIGSYS at fork/clone)", m.Name)
			}
		})
	}
}

// BenchmarkMonitorCost measures the recurring depth-0 monitor of every
// agent of ours and of resource-agents' shell agents for the same
// services, each against its running service, in one run: every round
// calls each of them once, and /bin/true (the floor of any fork+exec) and
// a static Go program that prints a line and exits (the floor of any
// agent written in Go), in a new random order, so that a shared machine's
// noise falls on all alike. Per candidate it reports the median wall time
// and the median CPU time (user+system of the agent and every process it
// waited for), then, per pair of ours and the shell agent for the same
// service, the ratio of medians (goal: the shell agent costs at least 20x
// ours), the most ours may cost to meet it, and what the agent's packages
// cost alone (a program that links and initializes them and exits: the
// part of a call that no change to the monitor itself can remove). Where
// resource-agents has no agent for the service (consul, haproxy-dynamic,
// directory-registration), the ratio is against heartbeat/Dummy instead,
// the cheapest shell agent there is: a lower bound of what any shell agent
// would cost.
//
// HAFW_OCF_DIR_BEFORE names another build of our agents (an older
// commit's bin/): each of ours is then also measured from there, on the
// same running service, and the before/after ratios are reported.
//
// Every Go binary measured (ours, the older build's, the floors) runs
// from a copy this benchmark writes in one piece: how a file was written
// changes what executing it costs, and the linker's output (bin/ after
// make build) took about 2.5 ms more CPU per call here than the same
// bytes copied, which is how make install and packages write them.
//
// Run it with make bench, or:
// go test -tags integration -run '^$' -bench MonitorCost -benchtime 100x ./testcluster/
func BenchmarkMonitorCost(b *testing.B) {
	ms := append([]monitored{{Name: "true", Path: "/bin/true"}}, monitorFixture(b)...)
	bins := b.TempDir()
	ms = append(ms, monitored{Name: "go floor", Path: buildGo(b, "./testcluster/testdata/gofloor", filepath.Join(bins, "gofloor")), Go: true})
	for _, m := range ms {
		if m.Ours {
			name := filepath.Base(m.Path)
			ms = append(ms, monitored{Name: m.Name + " packages", Go: true,
				Path: buildGo(b, "./testcluster/testdata/linkonly/"+name, filepath.Join(bins, "linkonly-"+name))})
		}
	}
	if before := os.Getenv("HAFW_OCF_DIR_BEFORE"); before != "" {
		for _, m := range ms {
			if m.Ours {
				ms = append(ms, monitored{Name: m.Name + " (before)", Path: filepath.Join(before, filepath.Base(m.Path)), Env: m.Env, Go: true})
			}
		}
	}
	copies := b.TempDir()
	for i := range ms {
		if ms[i].Ours || ms[i].Go {
			ms[i].Path = copyBinary(b, ms[i].Path, filepath.Join(copies, strconv.Itoa(i)+"-"+filepath.Base(ms[i].Path)))
		}
	}
	wall := make([][]float64, len(ms))
	cpu := make([][]float64, len(ms))
	order := make([]int, len(ms))
	for i := range order {
		order[i] = i
	}
	call := func(i int) {
		cmd := exec.Command(ms[i].Path, "monitor")
		cmd.Env = ms[i].Env
		began := time.Now()
		err := cmd.Run()
		d := time.Since(began)
		if err != nil {
			b.Fatalf("%s monitor: %v (a failing call is often a cheap one: not measured)", ms[i].Name, err)
		}
		wall[i] = append(wall[i], float64(d)/float64(time.Millisecond))
		ps := cmd.ProcessState
		cpu[i] = append(cpu[i], float64(ps.UserTime()+ps.SystemTime())/float64(time.Millisecond))
	}
	for i := range ms { // warm-up: page cache, dockerd's and Consul's first answers
		call(i)
	}
	for i := range ms {
		wall[i], cpu[i] = nil, nil
	}
	b.ResetTimer()
	for b.Loop() {
		mrand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			call(i)
		}
	}
	b.StopTimer()

	byName := map[string]int{}
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-24s %6s %10s %10s %10s %10s\n", "monitor", "calls", "wall ms", "p90 ms", "CPU ms", "CPU p90")
	for i, m := range ms {
		byName[m.Name] = i
		fmt.Fprintf(&table, "%-24s %6d %10.2f %10.2f %10.2f %10.2f\n", m.Name, len(wall[i]),
			quantile(wall[i], 0.5), quantile(wall[i], 0.9), quantile(cpu[i], 0.5), quantile(cpu[i], 0.9))
	}
	floor := quantile(cpu[byName["go floor"]], 0.5)
	fmt.Fprintf(&table, "\n%-44s %10s %10s %8s %12s %12s\n", "shell agent / ours (ratio of medians)", "wall", "CPU", "goal 20x", "20x needs", "packages")
	for _, m := range ms {
		if !m.Ours {
			continue
		}
		peer, note := m.Peer, ""
		if peer == "" {
			peer, note = "heartbeat/Dummy", " (no shell agent for it: the cheapest one)"
		}
		j, ok := byName[peer]
		if !ok {
			fmt.Fprintf(&table, "%-44s %s not measured\n", peer+" / "+m.Name, peer)
			continue
		}
		i := byName[m.Name]
		rw := quantile(wall[j], 0.5) / quantile(wall[i], 0.5)
		rc := quantile(cpu[j], 0.5) / quantile(cpu[i], 0.5)
		met := "no"
		if rc >= 20 {
			met = "yes"
		}
		fmt.Fprintf(&table, "%-44s %9.1fx %9.1fx %8s %9.2f ms %9.2f ms%s\n", peer+" / "+m.Name, rw, rc, met,
			quantile(cpu[j], 0.5)/20, quantile(cpu[byName[m.Name+" packages"]], 0.5), note)
		b.ReportMetric(rc, "x-cpu-"+strings.ReplaceAll(peer, "heartbeat/", "")+"/"+m.Name)
	}
	fmt.Fprintf(&table, "(20x needs: the most ours may cost; packages: what linking and initializing the agent's packages\n"+
		"costs, running nothing of it; the Go floor: %.2f ms CPU, no Go agent costs less)\n\n", floor)
	for _, m := range ms {
		if m.Ours || m.Go && !strings.HasSuffix(m.Name, " (before)") {
			i := byName[m.Name]
			fmt.Fprintf(&table, "%-44s %9.2fx %9.2fx\n", m.Name+" / true", quantile(wall[i], 0.5)/quantile(wall[0], 0.5),
				quantile(cpu[i], 0.5)/quantile(cpu[0], 0.5))
		}
	}
	if os.Getenv("HAFW_OCF_DIR_BEFORE") != "" {
		fmt.Fprintf(&table, "\n%-44s %10s %10s %14s\n", "before / after (ratio of medians)", "wall", "CPU", "CPU saved ms")
		for _, m := range ms {
			j, ok := byName[m.Name+" (before)"]
			if !m.Ours || !ok {
				continue
			}
			i := byName[m.Name]
			fmt.Fprintf(&table, "%-44s %9.2fx %9.2fx %14.2f\n", m.Name, quantile(wall[j], 0.5)/quantile(wall[i], 0.5),
				quantile(cpu[j], 0.5)/quantile(cpu[i], 0.5), quantile(cpu[j], 0.5)-quantile(cpu[i], 0.5))
		}
	}
	// Printed, not logged: go test cuts a benchmark's log to a few lines.
	fmt.Print(table.String())
}

// buildGo builds the main package pkg (a path from the module's root) as
// the agents are built, static and stripped, to out.
func buildGo(b *testing.B, pkg, out string) string {
	b.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		b.Fatal(err)
	}
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	return out
}

// copyBinary writes the executable src to dst in one write, and returns
// dst.
func copyBinary(b *testing.B, src, dst string) string {
	b.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		b.Fatal(err)
	}
	return dst
}

// quantile is the q-quantile (0..1) of xs, nearest rank; NaN when empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
