// Package consultest runs real Consul server agents on loopback for
// integration tests: the binary pinned by testcluster/tools, built and cached
// by testcluster/scripts/build-consul.sh.
//
// Every agent binds 127.0.0.1 with ports of its own (HTTP, Serf LAN/WAN and
// server RPC; DNS and gRPC are disabled), a data directory under t.TempDir and
// a node name unique to the test, so several clusters can run side by side.
// Agents are stopped and their data removed when the test ends; when the test
// failed, the tail of each agent's log is written to the test log.
//
//	c := consultest.StartCluster(t, 3, nil)
//	leader := c.WaitLeader(30*time.Second) // index of the leader
//	c.Stop(leader)
//	c.WaitLeader(30*time.Second)
package consultest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options tune the agents. The zero value (or nil) gives tuned server agents
// that wait up to a minute for a leader.
type Options struct {
	// Dev starts the agent with -dev (in-memory state, no bootstrap_expect).
	// Only StartServer honours it: a cluster needs real servers.
	Dev bool
	// LeaderTimeout bounds the wait for a leader at start (default 60s).
	LeaderTimeout time.Duration
	// StopTimeout bounds the wait after SIGTERM before SIGKILL (default 10s).
	StopTimeout time.Duration
	// LogLevel is the agents' log_level (default "info").
	LogLevel string
	// ExtraHCL, when set, is written into a second config file that every
	// agent loads after the generated one, e.g. `acl { enabled = true }`.
	ExtraHCL string
}

// Agent is one consul agent process.
type Agent struct {
	Name        string // node name, unique to the test
	HTTPAddr    string // 127.0.0.1:port of the HTTP API
	HTTPPort    int
	SerfLANPort int
	SerfWANPort int
	ServerPort  int    // server RPC (Raft) port; the leader is named by 127.0.0.1:ServerPort
	Dir         string // holds config.json, extra.hcl, the data dir and consul.log
	DataDir     string
	LogFile     string

	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// URL is the base URL of the agent's HTTP API.
func (a *Agent) URL() string { return "http://" + a.HTTPAddr }

// PID is the process id of the running agent, or 0.
func (a *Agent) PID() int {
	if !a.Running() {
		return 0
	}
	return a.cmd.Process.Pid
}

// Running reports whether the agent process has been started and not exited.
func (a *Agent) Running() bool {
	if a.cmd == nil {
		return false
	}
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// Cluster is a set of consul server agents started by StartServer or
// StartCluster. Its methods call t.Fatal on failure, so call them from the
// test's goroutine.
type Cluster struct {
	Agents []*Agent

	t    testing.TB
	bin  string
	opts Options
}

// HTTPAddr is the HTTP address (127.0.0.1:port) of agent i.
func (c *Cluster) HTTPAddr(i int) string { return c.Agents[i].HTTPAddr }

// HTTPAddrs are the HTTP addresses of all agents, running or not.
func (c *Cluster) HTTPAddrs() []string {
	addrs := make([]string, len(c.Agents))
	for i, a := range c.Agents {
		addrs[i] = a.HTTPAddr
	}
	return addrs
}

var binary struct {
	sync.Mutex
	path string
}

// Binary returns the path of the real consul binary: $HAFW_CONSUL when set,
// else what testcluster/scripts/build-consul.sh prints (it builds the binary
// once, about 4 minutes cold, and caches it). It calls t.Fatal when neither
// gives an executable.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("HAFW_CONSUL"); p != "" {
		if err := checkExecutable(p); err != nil {
			t.Fatalf("consultest: HAFW_CONSUL: %v", err)
		}
		return p
	}
	binary.Lock()
	defer binary.Unlock()
	if binary.path != "" {
		return binary.path
	}
	script, err := buildScript()
	if err != nil {
		t.Fatalf("consultest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, script)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("consultest: %s: %v (set HAFW_CONSUL to a consul binary to skip the build)\n%s",
			script, err, tail(stderr.Bytes(), 40))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	p := strings.TrimSpace(lines[len(lines)-1])
	if err := checkExecutable(p); err != nil {
		t.Fatalf("consultest: %s printed %q: %v\n%s", script, p, err, tail(stderr.Bytes(), 40))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Logf("consultest: built %s in %s", p, d.Round(time.Second))
	}
	binary.path = p
	return p
}

// buildScript finds testcluster/scripts/build-consul.sh next to this source
// file, or, when the test binary was built with -trimpath, above the working
// directory (go test runs in the package's directory).
func buildScript() (string, error) {
	const rel = "testcluster/scripts/build-consul.sh"
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		p := filepath.Join(filepath.Dir(file), "..", "scripts", "build-consul.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("cannot find %s (set HAFW_CONSUL to a consul binary)", rel)
		}
		dir = parent
	}
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// StartServer starts one consul server (bootstrap_expect=1, or -dev when
// opts.Dev) and waits until it is its own leader.
func StartServer(t testing.TB, opts *Options) *Cluster {
	t.Helper()
	return start(t, 1, opts, opts != nil && opts.Dev)
}

// StartCluster starts n consul servers with bootstrap_expect=n that find each
// other through retry_join, and waits until every one of them knows the same
// leader.
func StartCluster(t testing.TB, n int, opts *Options) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("consultest: StartCluster: n = %d", n)
	}
	return start(t, n, opts, false)
}

func start(t testing.TB, n int, opts *Options, dev bool) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: Binary(t)}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.LeaderTimeout <= 0 {
		c.opts.LeaderTimeout = 60 * time.Second
	}
	if c.opts.StopTimeout <= 0 {
		c.opts.StopTimeout = 10 * time.Second
	}
	if c.opts.LogLevel == "" {
		c.opts.LogLevel = "info"
	}

	// Registered before the agents' cleanup, so it runs after it: the logs
	// then include the shutdown. t.TempDir's removal runs later still.
	root := t.TempDir()
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs(60)
		}
	})
	t.Cleanup(c.stopAll)

	// Ports are free when picked but only bound when consul starts: if
	// something takes one in between, start over with other ports.
	prefix := nodePrefix(t.Name())
	for attempt := 1; ; attempt++ {
		err := c.launch(root, prefix, n, dev)
		if err == nil {
			return c
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatalf("consultest: %v", err)
		}
		t.Logf("consultest: attempt %d: %v; retrying with other ports", attempt, err)
		c.stopAll()
		for _, a := range c.Agents {
			if err := os.RemoveAll(a.Dir); err != nil {
				t.Fatalf("consultest: %v", err)
			}
		}
	}
}

var errPortTaken = errors.New("port taken")

// launch configures and starts n agents and waits for their leader.
func (c *Cluster) launch(root, prefix string, n int, dev bool) error {
	ports, err := freePorts(4 * n)
	if err != nil {
		return err
	}
	c.Agents = nil
	for i := range n {
		dir := filepath.Join(root, fmt.Sprintf("consul%d", i))
		a := &Agent{
			Name:        fmt.Sprintf("%s-%d", prefix, i),
			HTTPPort:    ports[4*i],
			SerfLANPort: ports[4*i+1],
			SerfWANPort: ports[4*i+2],
			ServerPort:  ports[4*i+3],
			Dir:         dir,
			DataDir:     filepath.Join(dir, "data"),
			LogFile:     filepath.Join(dir, "consul.log"),
		}
		a.HTTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(a.HTTPPort))
		c.Agents = append(c.Agents, a)
	}
	for i, a := range c.Agents {
		var join []string
		for j, b := range c.Agents {
			if j != i {
				join = append(join, net.JoinHostPort("127.0.0.1", strconv.Itoa(b.SerfLANPort)))
			}
		}
		if err := c.writeConfig(a, n, join, dev); err != nil {
			return err
		}
	}
	for i := range c.Agents {
		if err := c.startAgent(i); err != nil {
			return err
		}
	}
	_, err = c.awaitLeader(c.opts.LeaderTimeout, allIndexes(n))
	return err
}

// writeConfig renders the agent's config. Timings are the fastest Consul lets
// a user set (raft_multiplier=1: 1 s election timeout; dev-mode gossip), and
// servers do not leave on SIGTERM, as in production.
func (c *Cluster) writeConfig(a *Agent, n int, join []string, dev bool) error {
	if err := os.MkdirAll(a.DataDir, 0o700); err != nil {
		return err
	}
	gossip := map[string]any{
		"gossip_interval": "100ms",
		"probe_interval":  "500ms",
		"probe_timeout":   "250ms",
		"suspicion_mult":  3,
	}
	cfg := map[string]any{
		"node_name":               a.Name,
		"datacenter":              "dc1",
		"server":                  true,
		"bind_addr":               "127.0.0.1",
		"advertise_addr":          "127.0.0.1",
		"advertise_addr_wan":      "127.0.0.1",
		"client_addr":             "127.0.0.1",
		"log_level":               c.opts.LogLevel,
		"disable_host_node_id":    true, // three agents on one host must not share a node ID
		"disable_update_check":    true,
		"leave_on_terminate":      false,
		"skip_leave_on_interrupt": true,
		"retry_interval":          "1s",
		"performance":             map[string]any{"raft_multiplier": 1},
		"gossip_lan":              gossip,
		"gossip_wan":              gossip,
		"ui_config":               map[string]any{"enabled": false},
		"ports": map[string]any{
			"http":     a.HTTPPort,
			"https":    -1,
			"dns":      -1,
			"grpc":     -1,
			"grpc_tls": -1,
			"serf_lan": a.SerfLANPort,
			"serf_wan": a.SerfWANPort,
			"server":   a.ServerPort,
		},
	}
	if !dev {
		cfg["data_dir"] = a.DataDir
		cfg["bootstrap_expect"] = n
	}
	if len(join) > 0 {
		cfg["retry_join"] = join
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	conf := filepath.Join(a.Dir, "config.json")
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		return err
	}
	a.args = []string{"agent", "-config-file", conf}
	if dev {
		a.args = append(a.args, "-dev")
	}
	if c.opts.ExtraHCL != "" {
		extra := filepath.Join(a.Dir, "extra.hcl")
		if err := os.WriteFile(extra, []byte(c.opts.ExtraHCL), 0o600); err != nil {
			return err
		}
		a.args = append(a.args, "-config-file", extra)
	}
	return nil
}

func (c *Cluster) startAgent(i int) error {
	a := c.Agents[i]
	log, err := os.OpenFile(a.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "==> consultest: %s %s\n", c.bin, strings.Join(a.args, " "))
	cmd := exec.Command(c.bin, a.args...)
	cmd.Dir = a.Dir
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group (a ^C to the test does not reach it first), and
	// killed if the test process dies without its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", a.Name, err)
	}
	log.Close() // the child has its own copy
	a.cmd, a.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(a.done)
	return nil
}

// Stop sends SIGTERM to agent i (a server does not leave the cluster) and
// waits for it to exit, with SIGKILL after Options.StopTimeout.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	if err := c.stop(i, syscall.SIGTERM); err != nil {
		c.t.Fatalf("consultest: stop %s: %v", c.Agents[i].Name, err)
	}
}

// Kill sends SIGKILL to agent i and waits for it to exit.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	if err := c.stop(i, syscall.SIGKILL); err != nil {
		c.t.Fatalf("consultest: kill %s: %v", c.Agents[i].Name, err)
	}
}

// Restart stops agent i if it runs, starts it again with the same node name,
// ports and data, and waits until its HTTP API answers. It does not wait for
// a leader: use WaitLeader for that.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	a := c.Agents[i]
	if err := c.stop(i, syscall.SIGTERM); err != nil {
		c.t.Fatalf("consultest: restart %s: %v", a.Name, err)
	}
	if err := c.startAgent(i); err != nil {
		c.t.Fatalf("consultest: restart: %v", err)
	}
	deadline := time.Now().Add(c.opts.LeaderTimeout)
	for {
		if _, err := get(a, "/v1/agent/self"); err == nil {
			return
		} else if !a.Running() || time.Now().After(deadline) {
			c.t.Fatalf("consultest: restart %s: HTTP API not up: %v\n%s", a.Name, err, c.logTail(a, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) stop(i int, sig syscall.Signal) error {
	a := c.Agents[i]
	if !a.Running() {
		return nil
	}
	if err := a.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-a.done:
		return nil
	case <-time.After(c.opts.StopTimeout):
	}
	if sig != syscall.SIGKILL {
		c.t.Logf("consultest: %s did not exit %s after %s; killing it", a.Name, sig, c.opts.StopTimeout)
		_ = a.cmd.Process.Kill()
	}
	select {
	case <-a.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("pid %d still running after SIGKILL", a.cmd.Process.Pid)
	}
}

func (c *Cluster) stopAll() {
	var wg sync.WaitGroup
	for i := range c.Agents {
		wg.Go(func() {
			if err := c.stop(i, syscall.SIGTERM); err != nil {
				c.t.Errorf("consultest: cleanup: %s: %v", c.Agents[i].Name, err)
			}
		})
	}
	wg.Wait()
}

// Leader is the leader that agent i reports: the index of the agent whose
// server address it names, or -1 when it reports no leader.
func (c *Cluster) Leader(i int) (int, error) {
	b, err := get(c.Agents[i], "/v1/status/leader")
	if err != nil {
		return -1, err
	}
	var addr string
	if err := json.Unmarshal(b, &addr); err != nil {
		return -1, fmt.Errorf("/v1/status/leader: %q: %w", b, err)
	}
	if addr == "" {
		return -1, nil
	}
	for j, a := range c.Agents {
		if addr == net.JoinHostPort("127.0.0.1", strconv.Itoa(a.ServerPort)) {
			return j, nil
		}
	}
	return -1, fmt.Errorf("leader %s is none of this cluster's agents", addr)
}

// WaitLeader waits up to within until every running agent reports the same
// running leader, and returns the leader's index. It calls t.Fatal on timeout.
func (c *Cluster) WaitLeader(within time.Duration) int {
	c.t.Helper()
	var running []int
	for i, a := range c.Agents {
		if a.Running() {
			running = append(running, i)
		}
	}
	if len(running) == 0 {
		c.t.Fatalf("consultest: WaitLeader: no agent is running")
	}
	return c.waitLeader(within, running)
}

func (c *Cluster) waitLeader(within time.Duration, among []int) int {
	c.t.Helper()
	leader, err := c.awaitLeader(within, among)
	if err != nil {
		c.t.Fatalf("consultest: %v", err)
	}
	return leader
}

// awaitLeader polls until all of among agree on a running leader. It gives up
// at once when one of them exits, with errPortTaken when its log says so.
func (c *Cluster) awaitLeader(within time.Duration, among []int) (int, error) {
	deadline := time.Now().Add(within)
	for {
		leader, why := c.agreedLeader(among)
		if why == "" {
			return leader, nil
		}
		for _, i := range among {
			if a := c.Agents[i]; !a.Running() {
				log := c.logTail(a, 30)
				err := fmt.Errorf("%s exited (%v) while waiting for a leader; its log ends:\n%s",
					a.Name, a.cmd.ProcessState, log)
				if strings.Contains(log, "address already in use") {
					err = fmt.Errorf("%w: %w", errPortTaken, err)
				}
				return -1, err
			}
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("no leader within %s: %s", within, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// agreedLeader returns the leader all of among report, or why there is none.
func (c *Cluster) agreedLeader(among []int) (int, string) {
	leader := -1
	for _, i := range among {
		a := c.Agents[i]
		if !a.Running() {
			return -1, fmt.Sprintf("%s exited", a.Name)
		}
		l, err := c.Leader(i)
		switch {
		case err != nil:
			return -1, fmt.Sprintf("%s: %v", a.Name, err)
		case l < 0:
			return -1, fmt.Sprintf("%s reports no leader", a.Name)
		case !c.Agents[l].Running():
			// Followers name a stopped leader until their heartbeat times out.
			return -1, fmt.Sprintf("%s still reports stopped %s", a.Name, c.Agents[l].Name)
		case leader >= 0 && l != leader:
			return -1, fmt.Sprintf("%s reports %s, another agent %s", a.Name, c.Agents[l].Name, c.Agents[leader].Name)
		}
		leader = l
	}
	return leader, ""
}

var client = &http.Client{Timeout: 2 * time.Second}

func get(a *Agent, path string) ([]byte, error) {
	resp, err := client.Get(a.URL() + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

func (c *Cluster) dumpLogs(lines int) {
	for _, a := range c.Agents {
		c.t.Logf("consultest: last lines of %s (%s):\n%s", a.Name, a.LogFile, c.logTail(a, lines))
	}
}

func (c *Cluster) logTail(a *Agent, lines int) string {
	b, err := os.ReadFile(a.LogFile)
	if err != nil {
		return err.Error()
	}
	return tail(b, lines)
}

func tail(b []byte, lines int) string {
	var all []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		all = append(all, sc.Text())
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// FreePorts returns n distinct ports that are free on 127.0.0.1 for both TCP
// and UDP, for tests that start consul (or anything else) themselves.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := freePorts(n)
	if err != nil {
		t.Fatalf("consultest: %v", err)
	}
	return ports
}

// freePorts returns n distinct ports that are free on 127.0.0.1 for both TCP
// and UDP (Serf uses both on one port); all are held until all are found.
// They are picked at random below the kernel's ephemeral range, so that
// outgoing connections (which take their local port from that range, as do
// listeners on port 0) cannot take one before consul binds it.
func freePorts(n int) ([]int, error) {
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	lo, hi := 10000, ephemeralLow()
	if hi-lo < 1000 {
		lo, hi = 0, 0 // no room below: let the kernel pick
	}
	seen := map[int]bool{}
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("cannot find %d free ports on 127.0.0.1", n)
		}
		port := 0
		if hi > lo {
			port = lo + mrand.IntN(hi-lo)
			if seen[port] {
				continue
			}
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		closers = append(closers, l)
		port = l.Addr().(*net.TCPAddr).Port
		seen[port] = true
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // UDP side taken: keep the TCP side held, try another
		}
		closers = append(closers, u)
		ports = append(ports, port)
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return lo
}

// nodePrefix makes a valid DNS label from the test name, with a random
// suffix so that repeated and parallel runs never share node names.
func nodePrefix(test string) string {
	var b strings.Builder
	dash := true
	for _, r := range strings.ToLower(test) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-")
	}
	if name == "" {
		name = "consul"
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	return name + "-" + hex.EncodeToString(rnd[:])
}

func allIndexes(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
