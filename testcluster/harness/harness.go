// Package harness drives real multi-node Corosync + Pacemaker test clusters
// the same way whatever runs the nodes: Docker containers
// (testcluster/dockercluster, what CI runs) or Vagrant/libvirt VMs
// (testcluster/vagrantcluster).
//
// A Backend creates, powers and removes the machines; everything a test
// does on a cluster (wait until it formed, run commands, kill a node, cut
// it off and heal it, read its status, collect its logs, configure fencing)
// is written once here on top of it.
//
//	c := harness.Up(t, backend, nil) // 3 nodes, ready (DC, quorum, all online)
//	out, err := c.Exec(c.Nodes[0], "pcs", "status")
//	c.Kill(c.Nodes[1])               // hard power-off: a node loss
//	c.Partition(c.Nodes[2])          // iptables inside: all traffic to the others dropped
//
// Every cluster gets a name of its own (hafw-<random>), so two runs on one
// host never collide. The cluster is removed when the test ends, after its
// logs were collected when the test failed; a program that leaves a cluster
// running for people to use (make demo) names it and keeps it instead
// (Options.Name, Options.Keep) and removes it later through its backend.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TB is what the harness needs of its caller: *testing.T and *testing.B
// have it, and so does a program driving a cluster outside go test, whose
// Fatal ends it.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
	Cleanup(func())
	TempDir() string
}

// Backend creates and powers the machines of one cluster. Its methods are
// called from one goroutine at a time.
type Backend interface {
	// Kind names the backend: "docker", "vagrant".
	Kind() string
	// Create creates and boots the nodes of spec, each provisioned to join
	// the corosync cluster and start Pacemaker, and returns them in node-id
	// order, followed by the remote nodes (Node.Remote) running
	// pacemaker-remoted, not yet attached. When it fails, Destroy still
	// removes what it created.
	Create(ctx context.Context, spec Spec) ([]Node, error)
	// Command is cmd, to be run as root on node; the caller starts it and
	// sets its input and output.
	Command(ctx context.Context, node string, cmd ...string) *exec.Cmd
	// PowerOff stops node the hard way: every process gone at once, as a
	// power loss looks to the other nodes.
	PowerOff(ctx context.Context, node string) error
	// PowerOn boots a powered-off node again, with the disk it had.
	PowerOn(ctx context.Context, node string) error
	// Running reports whether node is powered on, and since when.
	Running(ctx context.Context, node string) (bool, time.Time, error)
	// CollectLogs copies node's Pacemaker and Corosync logs (and what else
	// the backend knows of it, e.g. its console) into dir.
	CollectLogs(ctx context.Context, node, dir string) error
	// Fencer is the stonith agent and its options (pcs stonith create ID
	// AGENT OPTIONS...) that power off the nodes of this cluster; it needs
	// Spec.Fencing. Without a pcmk_host_map option, EnableFencing takes the
	// node names as the device's ports.
	Fencer() (agent string, options []string, err error)
	// Destroy removes every node and whatever else Create made.
	Destroy(ctx context.Context) error
}

// Spec is what a Backend builds.
type Spec struct {
	Name      string // hafw-<random>: unique on this host, a prefix of everything created
	Nodes     int
	AgentsDir string // built agents, installed into /usr/lib/ocf/resource.d/ha-framework
	Fencing   bool   // prepare what Fencer needs
	// Files maps host files to paths inside every node (e.g. a consul
	// binary at /hafw/consul), read-only there.
	Files map[string]string
	// TokenMS is corosync's totem token timeout in ms; 0 leaves corosync's
	// default (3000). Node-loss detection takes about 2.2 times the token
	// (plus 650 ms per node beyond two): token expiry, then consensus.
	TokenMS int
	// Docker: every node runs its own Docker Engine, so a container a
	// resource runs there dies with its node. Backends that cannot
	// provide it fail Create.
	Docker bool
	// Keep marks a cluster meant to outlive its creator: the backend's
	// sweep of leftovers from crashed runs must leave it alone.
	Keep bool
	// RemoteNodes more machines run pacemaker-remoted (no corosync, no
	// pacemaker), with a Pacemaker Remote key every node shares at
	// /etc/pacemaker/authkey. Backends that cannot provide them fail
	// Create.
	RemoteNodes int
}

// Node is one machine of a cluster.
type Node struct {
	// Name is the Pacemaker node name, also the hostname of a full node.
	// A remote node's hostname differs from it (a remote node's name is
	// the id of its connection resource, which the host does not know),
	// so that taking the hostname for the node's name shows in a test.
	Name   string
	IP     string // address on the cluster network
	Remote bool   // a pacemaker_remote node
}

// MemoryReporter is a Backend that can tell each node's memory use.
type MemoryReporter interface {
	Memory(ctx context.Context, nodes []string) (map[string]string, error)
}

// NodeAdder is a Backend that can add a node to a running cluster.
type NodeAdder interface {
	// AddNode creates one more node on the cluster's network, provisioned
	// as Create provisions the others (same software, files and corosync
	// key) with a corosync nodelist of every node, itself last, and leaves
	// it powered off: the members learn of it first (see Cluster.AddNode),
	// then PowerOn boots it into the cluster.
	AddNode(ctx context.Context) (Node, error)
}

// Options tune a cluster; the zero value (or nil) gives 3 nodes.
type Options struct {
	Nodes int // default 3
	// AgentsDir holds the built agents; default $HAFW_AGENTS_DIR, else the
	// module's bin/ (make build).
	AgentsDir string
	// ReadyTimeout bounds the wait for the cluster to form (default 3m;
	// backends may need more: see Backend docs).
	ReadyTimeout time.Duration
	// CreateTimeout bounds Backend.Create (default 20m).
	CreateTimeout time.Duration
	Fencing       bool              // see Spec.Fencing and EnableFencing
	Files         map[string]string // see Spec.Files
	// TokenMS is corosync's token timeout (Spec.TokenMS); default
	// $HAFW_TOKEN_MS, else corosync's own default.
	TokenMS int
	Docker  bool // see Spec.Docker; LoadImage puts images into the nodes' engines
	// RemoteNodes (default 0) pacemaker_remote nodes join the cluster:
	// Up attaches each with an ocf:pacemaker:remote resource named as the
	// node (Cluster.Remotes) and waits until they are online.
	RemoteNodes int
	// LogDir receives the logs of a failed test, or of every test with
	// HAFW_E2E_KEEP_LOGS=1 (default
	// $HAFW_E2E_LOGDIR, else /tmp/hafw-e2e-logs).
	LogDir string
	// Name is the cluster's name, a prefix of everything the backend
	// creates; default hafw-<random>. A fixed name lets a later run find
	// the cluster again (to remove it).
	Name string
	// Keep leaves the cluster running when the test or program ends: no
	// removal, no log collection, and the backend never sweeps it as a
	// leftover. Whoever keeps it removes it (dockercluster.Remove).
	Keep bool
	// Waiting, when set, is called at every poll of WaitFor (and so of
	// Up's wait for the cluster to form) with what is awaited, for how
	// long so far, and why it is not there yet: a program shows it.
	Waiting func(what string, since time.Duration, why string)
}

// Bounds of single steps.
const (
	execWait    = 2 * time.Minute // one Exec
	destroyWait = 5 * time.Minute
	powerWait   = 5 * time.Minute
)

// Cluster is a running cluster.
type Cluster struct {
	Name    string
	Nodes   []string          // names, in node-id order
	Remotes []string          // pacemaker_remote nodes (Options.RemoteNodes)
	IPs     map[string]string // node name → cluster address, remote nodes too
	Backend Backend
	Fencing bool
	// Waiting: see Options.Waiting; may be set at any time.
	Waiting func(what string, since time.Duration, why string)

	t       TB
	logDir  string
	removed bool
}

// Up creates a cluster on b and waits until it is ready. Everything it
// creates is removed when the test ends, even when Up itself fails, unless
// opts.Keep.
func Up(t TB, b Backend, opts *Options) *Cluster {
	t.Helper()
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 3 * time.Minute
	}
	if o.CreateTimeout == 0 {
		o.CreateTimeout = 20 * time.Minute
	}
	if o.LogDir == "" {
		o.LogDir = EnvOr("HAFW_E2E_LOGDIR", "/tmp/hafw-e2e-logs")
	}
	agents, err := AgentsDir(o.AgentsDir)
	if err != nil {
		t.Fatal(err)
	}
	if o.TokenMS == 0 {
		if v := os.Getenv("HAFW_TOKEN_MS"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 100 {
				t.Fatalf("HAFW_TOKEN_MS=%q: want milliseconds, at least 100", v)
			}
			o.TokenMS = n
		}
	}
	files := map[string]string{}
	for host, inNode := range o.Files {
		abs, err := filepath.Abs(host)
		if err != nil {
			t.Fatal(err)
		}
		files[abs] = inNode
	}
	if o.Name == "" {
		o.Name = "hafw-" + RandomHex(3)
	}
	c := &Cluster{Name: o.Name, IPs: map[string]string{}, Backend: b, Fencing: o.Fencing, Waiting: o.Waiting, t: t}
	c.logDir = filepath.Join(o.LogDir, c.Name)
	if !o.Keep {
		t.Cleanup(c.cleanup)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), o.CreateTimeout)
	nodes, err := b.Create(ctx, Spec{Name: c.Name, Nodes: o.Nodes, AgentsDir: agents, Fencing: o.Fencing, Files: files, TokenMS: o.TokenMS, Docker: o.Docker, Keep: o.Keep,
		RemoteNodes: o.RemoteNodes})
	cancel()
	for _, n := range nodes {
		if n.Remote {
			c.Remotes = append(c.Remotes, n.Name)
		} else {
			c.Nodes = append(c.Nodes, n.Name)
		}
		c.IPs[n.Name] = n.IP
	}
	if err != nil {
		t.Fatalf("%s cluster %s: %v", b.Kind(), c.Name, err)
	}
	if len(c.Remotes) != o.RemoteNodes {
		t.Fatalf("%s cluster %s: %d remote nodes created, want %d", b.Kind(), c.Name, len(c.Remotes), o.RemoteNodes)
	}
	created := time.Since(start)
	c.waitOnline(o.ReadyTimeout, c.Nodes)
	c.attachRemotes(o.ReadyTimeout)
	t.Logf("%s cluster %s: %d nodes and %d remote nodes created in %s, ready in %s", b.Kind(), c.Name, o.Nodes, o.RemoteNodes,
		created.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	return c
}

// attachRemotes creates the connection resource of every remote node, an
// ocf:pacemaker:remote primitive whose id is the node's name, and waits
// until they are all online. pcs wants --force: it would rather copy the
// key itself (pcs cluster node add-remote, through pcsd, which the nodes
// do not run), but every node has it already.
func (c *Cluster) attachRemotes(within time.Duration) {
	c.t.Helper()
	for _, r := range c.Remotes {
		if out, err := c.Exec(c.Nodes[0], "pcs", "resource", "create", r, "ocf:pacemaker:remote", "server="+c.IPs[r],
			"reconnect_interval=15s", "op", "monitor", "interval=10s", "--force"); err != nil {
			c.t.Fatalf("attaching remote node %s: %v\n%s", r, err, out)
		}
	}
	if len(c.Remotes) > 0 {
		c.WaitReady(within)
	}
}

// WaitReady waits until every node sees an elected DC, quorum, and all
// nodes online, remote nodes included; it fails the test when that takes
// longer than within.
func (c *Cluster) WaitReady(within time.Duration) {
	c.t.Helper()
	c.waitOnline(within, append(slices.Clone(c.Nodes), c.Remotes...))
}

// waitOnline is WaitReady for the nodes online, as each full node sees it.
func (c *Cluster) waitOnline(within time.Duration, online []string) {
	c.t.Helper()
	c.WaitFor(within, "cluster ready", func() (bool, string) {
		for _, n := range c.Nodes {
			s, err := c.Status(n)
			if err != nil {
				return false, err.Error()
			}
			if ok, why := s.Ready(online); !ok {
				return false, n + ": " + why
			}
		}
		return true, ""
	})
}

// WaitFor polls cond every half second until it holds, and fails the test
// with cond's last explanation after within.
func (c *Cluster) WaitFor(within time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if c.Waiting != nil {
			c.Waiting(what, time.Since(start), why)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not reached after %s: %s", what, within, why)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Status is node's view of the cluster (crm_mon on that node).
func (c *Cluster) Status(node string) (Status, error) {
	out, err := c.Exec(node, "crm_mon", "-1", "--output-as=xml")
	if err != nil {
		return Status{}, err
	}
	return ParseStatus([]byte(out))
}

// Exec runs cmd as root on node and returns its output (stdout and
// stderr), bounded by two minutes. A non-zero exit is an error that
// ExitCode reads; it carries the output's tail.
func (c *Cluster) Exec(node string, cmd ...string) (string, error) {
	return c.ExecContext(context.Background(), node, cmd...)
}

// ExecContext is Exec bounded by ctx as well.
func (c *Cluster) ExecContext(ctx context.Context, node string, cmd ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, execWait)
	defer cancel()
	out, err := c.Backend.Command(ctx, node, cmd...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, &ExecError{Node: node, Cmd: cmd, Output: s, Err: err}
	}
	return s, nil
}

// Command is cmd on node, not started (for long-running commands whose
// output is read as it comes).
func (c *Cluster) Command(ctx context.Context, node string, cmd ...string) *exec.Cmd {
	return c.Backend.Command(ctx, node, cmd...)
}

// ExecError is a command on a node that failed.
type ExecError struct {
	Node   string
	Cmd    []string
	Output string
	Err    error
}

func (e *ExecError) Error() string {
	return fmt.Sprintf("%s: %s: %v: %s", e.Node, strings.Join(e.Cmd, " "), e.Err, TailLines(e.Output, 20))
}

func (e *ExecError) Unwrap() error { return e.Err }

// ExitCode is the exit status an error of Exec carries, 0 for nil, -1 when
// the command did not run to an exit.
func ExitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		return -1
	}
}

// Kill powers node off the hard way: a node loss as the others see it.
func (c *Cluster) Kill(node string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), powerWait)
	defer cancel()
	if err := c.Backend.PowerOff(ctx, node); err != nil {
		c.t.Fatalf("power off %s: %v", node, err)
	}
}

// Start powers a stopped node on again; it rejoins with the CIB it had.
func (c *Cluster) Start(node string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), powerWait)
	defer cancel()
	if err := c.Backend.PowerOn(ctx, node); err != nil {
		c.t.Fatalf("power on %s: %v", node, err)
	}
}

// AddNode creates one more node, powered off, and returns its name; its
// address is in c.IPs and it is last in c.Nodes (so WaitReady waits for it
// too). It fails the test when the backend cannot add nodes.
//
// The node boots (Start) with corosync.conf listing every node; the
// members' corosync.conf still lists the old ones only. Joining it is the
// administrator's procedure, which the caller runs: add the node to the
// nodelist of every member, corosync-cfgtool -R on one of them, then
// Start. A member powered on again afterwards is provisioned from the old
// list once more (its node list is fixed when it is created).
func (c *Cluster) AddNode() string {
	c.t.Helper()
	a, ok := c.Backend.(NodeAdder)
	if !ok {
		c.t.Fatalf("the %s backend cannot add nodes to a running cluster", c.Backend.Kind())
	}
	ctx, cancel := context.WithTimeout(context.Background(), powerWait)
	defer cancel()
	n, err := a.AddNode(ctx)
	if n.Name != "" {
		// Known even on failure, so CollectLogs and Destroy see it.
		c.Nodes = append(c.Nodes, n.Name)
		c.IPs[n.Name] = n.IP
	}
	if err != nil {
		c.t.Fatalf("adding a node to %s: %v", c.Name, err)
	}
	return n.Name
}

// Running reports whether node is powered on, and since when.
func (c *Cluster) Running(node string) (bool, time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), execWait)
	defer cancel()
	return c.Backend.Running(ctx, node)
}

// Memory is each node's memory use, when the backend can tell it.
func (c *Cluster) Memory() (map[string]string, error) {
	m, ok := c.Backend.(MemoryReporter)
	if !ok {
		return nil, fmt.Errorf("the %s backend does not report memory", c.Backend.Kind())
	}
	ctx, cancel := context.WithTimeout(context.Background(), execWait)
	defer cancel()
	return m.Memory(ctx, c.Nodes)
}

const partitionChain = "HAFW-PARTITION"

// Partition cuts node off from every other node: on node, iptables drops
// all traffic from and to their cluster addresses, so corosync (knet over
// UDP) loses them while the backend's own way in (docker exec, ssh over
// the management network) keeps working.
func (c *Cluster) Partition(node string) {
	c.t.Helper()
	script := fmt.Sprintf("iptables -N %[1]s 2>/dev/null || iptables -F %[1]s\n"+
		"iptables -C INPUT -j %[1]s 2>/dev/null || iptables -I INPUT 1 -j %[1]s\n"+
		"iptables -C OUTPUT -j %[1]s 2>/dev/null || iptables -I OUTPUT 1 -j %[1]s\n", partitionChain)
	for _, n := range c.Nodes {
		if n != node {
			script += fmt.Sprintf("iptables -A %[1]s -s %[2]s -j DROP\niptables -A %[1]s -d %[2]s -j DROP\n", partitionChain, c.IPs[n])
		}
	}
	if out, err := c.Exec(node, "bash", "-euc", script); err != nil {
		c.t.Fatalf("partition %s: %v\n%s", node, err, out)
	}
}

// Heal undoes Partition.
func (c *Cluster) Heal(node string) {
	c.t.Helper()
	if out, err := c.Exec(node, "iptables", "-F", partitionChain); err != nil {
		c.t.Fatalf("heal %s: %v\n%s", node, err, out)
	}
}

// FenceDevice is the id of the stonith resource EnableFencing creates.
const FenceDevice = "hafw-fence"

// EnableFencing creates a stonith device able to power off every node (the
// backend's Fencer) and sets stonith-enabled=true. The cluster must have
// been created with Options.Fencing.
func (c *Cluster) EnableFencing() {
	c.t.Helper()
	if !c.Fencing {
		c.t.Fatal("EnableFencing: cluster created without Options.Fencing")
	}
	agent, opts, err := c.Backend.Fencer()
	if err != nil {
		c.t.Fatalf("fencing on %s: %v", c.Backend.Kind(), err)
	}
	args := append([]string{"pcs", "stonith", "create", FenceDevice, agent}, opts...)
	if !slices.ContainsFunc(opts, func(o string) bool { return strings.HasPrefix(o, "pcmk_host_map=") }) {
		// The device's port is the node name.
		args = append(args, "pcmk_host_list="+strings.Join(append(slices.Clone(c.Nodes), c.Remotes...), " "), "pcmk_host_check=static-list")
	}
	args = append(args,
		// A reboot would power the node on again at once, racing the
		// fencing result: a node that reads it was "allegedly just fenced"
		// keeps its pacemakerd down for good. So fencing powers off, and
		// Cluster.Start is the power button.
		"pcmk_reboot_action=off",
		"op", "monitor", "interval=60s")
	if out, err := c.Exec(c.Nodes[0], args...); err != nil {
		c.t.Fatalf("creating the stonith device: %v\n%s", err, out)
	}
	if out, err := c.Exec(c.Nodes[0], "crm_attribute", "-t", "crm_config", "-n", "stonith-enabled", "-v", "true"); err != nil {
		c.t.Fatalf("stonith-enabled: %v\n%s", err, out)
	}
}

// CollectLogs copies each node's logs into dir/<node>/ (through the
// backend), with the CIB of every node that answers. It returns the first
// error and goes on with the rest.
func (c *Cluster) CollectLogs(dir string) error {
	var first error
	keep := func(err error) {
		if first == nil && err != nil {
			first = err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), destroyWait)
	defer cancel()
	for _, n := range append(slices.Clone(c.Nodes), c.Remotes...) {
		nd := filepath.Join(dir, n)
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return err
		}
		keep(c.Backend.CollectLogs(ctx, n, nd))
		if running, _, _ := c.Backend.Running(ctx, n); running {
			if cib, err := c.ExecContext(ctx, n, "cibadmin", "-Q"); err == nil {
				keep(os.WriteFile(filepath.Join(nd, "cib.xml"), []byte(cib), 0o644))
			}
			if st, err := c.ExecContext(ctx, n, "crm_mon", "-1", "-rf"); err == nil {
				keep(os.WriteFile(filepath.Join(nd, "crm_mon.txt"), []byte(st), 0o644))
			}
			// Daemons the agents run (HAProxy's watcher, Consul) log
			// into their state folders under HA_RSCTMP or /var/log/ha-framework.
			if logs, err := c.ExecContext(ctx, n, "sh", "-c", "for f in /run/resource-agents/*/*.log /var/log/ha-framework/*.log; do [ -f \"$f\" ] && echo \"==> $f\" && tail -n 5000 \"$f\"; done; true"); err == nil {
				keep(os.WriteFile(filepath.Join(nd, "agent-daemons.log"), []byte(logs), 0o644))
			}
		}
	}
	return first
}

// Down removes the cluster. Up arranges for it at the end of the test;
// calling it earlier is allowed.
func (c *Cluster) Down() {
	if c.removed {
		return
	}
	c.removed = true
	ctx, cancel := context.WithTimeout(context.Background(), destroyWait)
	defer cancel()
	if err := c.Backend.Destroy(ctx); err != nil {
		c.t.Logf("removing %s cluster %s: %v", c.Backend.Kind(), c.Name, err)
	}
}

func (c *Cluster) cleanup() {
	if c.t.Failed() && !c.removed {
		c.logFailures()
	}
	if (c.t.Failed() || os.Getenv("HAFW_E2E_KEEP_LOGS") == "1") && !c.removed {
		if err := c.CollectLogs(c.logDir); err != nil {
			c.t.Logf("collecting logs: %v", err)
		}
		c.t.Logf("logs of cluster %s in %s", c.Name, c.logDir)
	}
	c.Down()
}

// logFailures writes the failed operations, as the first node that
// answers sees them, into the test's output: where CI shows only that
// output, they tell which agent failed where, and its exit reason.
func (c *Cluster) logFailures() {
	for _, n := range c.Nodes {
		s, err := c.Status(n)
		if err != nil {
			continue
		}
		if len(s.Failures) == 0 {
			c.t.Logf("failed operations (as %s sees them): none", n)
		}
		for _, f := range s.Failures {
			c.t.Logf("failed operation (as %s sees it): %s", n, f)
		}
		return
	}
}

// AgentsDir is the folder of built agents: given, $HAFW_AGENTS_DIR, or the
// module's bin/.
func AgentsDir(given string) (string, error) {
	dir := given
	if dir == "" {
		dir = os.Getenv("HAFW_AGENTS_DIR")
	}
	if dir == "" {
		root, err := ModuleRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bin")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "example")); err != nil {
		return "", fmt.Errorf("no built agents in %s (run make build): %v", dir, err)
	}
	return dir, nil
}

// ModuleRoot is the folder holding go.mod, above the working directory
// (go test runs in the package's folder).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// TailLines is the last n lines of s.
func TailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RandomBytes is n random bytes.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return b
}

// RandomHex is n random bytes in hex.
func RandomHex(n int) string { return hex.EncodeToString(RandomBytes(n)) }

// EnvOr is $key, or def when it is empty.
func EnvOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// LoadImage copies the image ref from this host's Docker Engine into the
// engine of every node (Options.Docker), so nodes need no registry: the
// image is saved once to a file, then fed to `docker load` on each node.
// Fails the test on any error, naming the node.
func (c *Cluster) LoadImage(ref string) {
	c.t.Helper()
	archive := filepath.Join(c.t.TempDir(), "image.tar")
	ctx, cancel := context.WithTimeout(context.Background(), execWait)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "save", "-o", archive, ref).CombinedOutput(); err != nil {
		c.t.Fatalf("docker save %s: %v: %s", ref, err, strings.TrimSpace(string(out)))
	}
	for _, n := range c.Nodes {
		f, err := os.Open(archive)
		if err != nil {
			c.t.Fatal(err)
		}
		cmd := c.Backend.Command(ctx, n, "docker", "load", "--quiet")
		cmd.Stdin = f
		out, err := cmd.CombinedOutput()
		f.Close()
		if err != nil {
			c.t.Fatalf("docker load %s on %s: %v: %s", ref, n, err, strings.TrimSpace(string(out)))
		}
	}
}
