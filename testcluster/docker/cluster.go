// Package dockercluster runs real multi-node Corosync + Pacemaker clusters
// in Docker containers for end-to-end tests.
//
// Each node is a container of the hafw-node image (Debian bookworm's
// corosync, pacemaker, pcs, crmsh, resource-agents, fence-agents, haproxy),
// built locally from Debian packages by build-image.sh and cached by a hash
// of its recipe. The container's entrypoint writes corosync.conf (knet, all
// node addresses), starts corosync and pacemakerd as its children and copies
// the project's built agents (bin/, mounted read-only) into
// /usr/lib/ocf/resource.d/ha-framework, so the image never depends on the
// code under test.
//
// Every cluster gets a name of its own (hafw-<random>), its own Docker
// network with a fixed subnet (so a restarted node keeps its address), a
// fresh corosync authkey, and node containers named <cluster>-n1.. whose
// hostnames are the Pacemaker node names. Nothing is published on the host:
// tests reach the nodes only through docker exec.
//
//	c := dockercluster.Up(t, nil) // 3 nodes, ready (DC, quorum, all online)
//	out, err := c.Exec(c.Nodes[0], "pcs", "status")
//	c.Kill(c.Nodes[1])            // docker kill -s KILL: a hard node loss
//	c.Partition(c.Nodes[2])       // iptables inside: corosync traffic dropped
//
// The cluster is removed when the test ends, after its logs were collected
// when the test failed. Containers and networks of runs older than an hour
// (crashed test binaries) are removed by the next Up.
package dockercluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	labelCluster = "hafw.cluster"
	labelCreated = "hafw.created" // unix seconds, read by the reaper
	leftoverAge  = time.Hour
	dockerWait   = 2 * time.Minute // bound of every docker command
	buildWait    = 20 * time.Minute
)

// Options tune a cluster. The zero value (or nil) gives 3 nodes of the
// image build-image.sh builds, with the agents of the module's bin/.
type Options struct {
	Nodes int // number of nodes, default 3
	// Image is the node image; default $HAFW_NODE_IMAGE, else the output
	// of testcluster/docker/build-image.sh (which reuses a cached image).
	Image string
	// AgentsDir holds the built agents; default $HAFW_AGENTS_DIR, else the
	// module's bin/ (make build). Mounted read-only into every node.
	AgentsDir string
	// ReadyTimeout bounds the wait for the cluster to form (default 3m).
	ReadyTimeout time.Duration
	// Fencing lets the nodes fence each other with fence_docker through
	// this host's Docker Engine (see fencing.go).
	Fencing bool
	// LogDir receives the logs of a failed test (default
	// $HAFW_E2E_LOGDIR, else /tmp/hafw-e2e-logs).
	LogDir string
	// ExtraMounts maps host paths (files or folders) to paths inside every
	// node, mounted read-only (e.g. a consul binary at /hafw/consul).
	ExtraMounts map[string]string
}

// Cluster is a running cluster of node containers.
type Cluster struct {
	Name    string            // hafw-<random>: prefix of every container, the network's name
	Nodes   []string          // container names = hostnames = Pacemaker node names
	IPs     map[string]string // node name → address on the cluster network
	Image   string
	Fencing bool

	t       testing.TB
	dir     string // authkey, TLS material
	logDir  string
	removed bool
}

// Up creates and starts a cluster and waits until it is ready. Everything
// it creates is removed when the test ends, even when Up itself fails.
func Up(t testing.TB, opts *Options) *Cluster {
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
	if o.LogDir == "" {
		o.LogDir = envOr("HAFW_E2E_LOGDIR", "/tmp/hafw-e2e-logs")
	}
	if _, err := docker("info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Fatalf("no Docker Engine (run testcluster/docker/dockerd.sh): %v", err)
	}
	reapLeftovers(t, leftoverAge)
	image, err := nodeImage(o.Image)
	if err != nil {
		t.Fatal(err)
	}
	agents, err := agentsDir(o.AgentsDir)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Name: "hafw-" + randomHex(3), IPs: map[string]string{}, Image: image, Fencing: o.Fencing, t: t, dir: t.TempDir()}
	c.logDir = filepath.Join(o.LogDir, c.Name)
	t.Cleanup(c.cleanup)
	start := time.Now()
	var extra []string
	for host, inNode := range o.ExtraMounts {
		abs, err := filepath.Abs(host)
		if err != nil {
			t.Fatal(err)
		}
		extra = append(extra, "-v", abs+":"+inNode+":ro")
	}
	if err := c.create(o.Nodes, agents, extra); err != nil {
		t.Fatalf("cluster %s: %v", c.Name, err)
	}
	c.WaitReady(o.ReadyTimeout)
	t.Logf("cluster %s: %d nodes ready in %s (image %s)", c.Name, o.Nodes, time.Since(start).Round(100*time.Millisecond), image)
	return c
}

func (c *Cluster) create(n int, agents string, extra []string) error {
	subnet, err := createNetwork(c.Name)
	if err != nil {
		return err
	}
	addr := subnet.Addr()
	var pairs []string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%s-n%d", c.Name, i)
		c.Nodes = append(c.Nodes, name)
		ip := nth(addr, 10+i) // clear of the gateway (.1)
		c.IPs[name] = ip.String()
		pairs = append(pairs, name+"="+ip.String())
	}
	key := filepath.Join(c.dir, "authkey")
	if err := os.WriteFile(key, randomBytes(256), 0o400); err != nil {
		return err
	}
	var fenceArgs []string
	if c.Fencing {
		if fenceArgs, err = c.fencingMounts(); err != nil {
			return err
		}
	}
	caps := capabilityArgs()
	for _, name := range c.Nodes {
		args := []string{"run", "-d", "--name", name, "--hostname", name,
			"--network", c.Name, "--ip", c.IPs[name],
			"--label", labelCluster + "=" + c.Name, "--label", labelCreated + "=" + strconv.FormatInt(time.Now().Unix(), 10),
			"-e", "HAFW_CLUSTER=" + c.Name, "-e", "HAFW_NODES=" + strings.Join(pairs, " "),
			"-v", key + ":/hafw/authkey:ro", "-v", agents + ":/hafw/bin:ro",
			// /run is volatile on a real machine: a node killed and started
			// again must not find its agents' state files (probes would
			// report resources still active there).
			"--tmpfs", "/run:rw,nosuid,nodev,mode=755"}
		args = append(args, caps...)
		args = append(args, fenceArgs...)
		args = append(args, extra...)
		args = append(args, c.Image)
		if _, err := docker(args...); err != nil {
			return err
		}
	}
	return nil
}

// nth is the address i after a (i small).
func nth(a netip.Addr, i int) netip.Addr {
	for range i {
		a = a.Next()
	}
	return a
}

// createNetwork creates a user-defined bridge network with an explicit
// subnet: only those accept fixed container addresses, which corosync's
// nodelist needs across restarts. Docker picks a free subnet first (it knows
// which ones its other networks and the host's routes use); the network is
// then recreated with that subnet spelled out.
func createNetwork(name string) (netip.Prefix, error) {
	var last error
	for range 5 {
		created := strconv.FormatInt(time.Now().Unix(), 10)
		labels := []string{"--label", labelCluster + "=" + name, "--label", labelCreated + "=" + created}
		if _, err := docker(append([]string{"network", "create"}, append(labels, name)...)...); err != nil {
			return netip.Prefix{}, err
		}
		out, err := docker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", name)
		_, _ = docker("network", "rm", name)
		if err != nil {
			return netip.Prefix{}, err
		}
		p, err := netip.ParsePrefix(strings.Fields(out + " none")[0])
		if err != nil || !p.Addr().Is4() || p.Bits() > 24 {
			return netip.Prefix{}, fmt.Errorf("network %s: unusable subnet %q", name, out)
		}
		if _, last = docker(append([]string{"network", "create", "--subnet", p.String()}, append(labels, name)...)...); last == nil {
			return p, nil
		}
		// Another run took the subnet in between: ask again.
	}
	return netip.Prefix{}, last
}

// WaitReady waits until every node sees an elected DC, quorum, and all
// nodes online; it fails the test when that takes longer than within.
func (c *Cluster) WaitReady(within time.Duration) {
	c.t.Helper()
	c.WaitFor(within, "cluster ready", func() (bool, string) {
		for _, n := range c.Nodes {
			s, err := c.Status(n)
			if err != nil {
				return false, err.Error()
			}
			if ok, why := s.Ready(c.Nodes); !ok {
				return false, n + ": " + why
			}
		}
		return true, ""
	})
}

// WaitFor polls cond every half second until it holds, and fails the test with
// cond's last explanation after within.
func (c *Cluster) WaitFor(within time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not reached after %s: %s", what, within, why)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Status is node's view of the cluster (crm_mon on that node).
func (c *Cluster) Status(node string) (Status, error) {
	out, err := c.ExecContext(context.Background(), node, "crm_mon", "-1", "--output-as=xml")
	if err != nil {
		return Status{}, err
	}
	return ParseStatus([]byte(out))
}

// Exec runs cmd in node and returns its combined output, bounded by two
// minutes. A non-zero exit is an *exec.ExitError (see ExitCode).
func (c *Cluster) Exec(node string, cmd ...string) (string, error) {
	return c.ExecContext(context.Background(), node, cmd...)
}

// ExecContext is Exec bounded by ctx as well.
func (c *Cluster) ExecContext(ctx context.Context, node string, cmd ...string) (string, error) {
	return dockerContext(ctx, append([]string{"exec", node}, cmd...)...)
}

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

// Kill stops node the hard way (SIGKILL to its PID 1, so to corosync and
// every Pacemaker daemon at once): a power loss as the others see it.
func (c *Cluster) Kill(node string) {
	c.t.Helper()
	if _, err := docker("kill", "-s", "KILL", node); err != nil {
		c.t.Fatalf("kill %s: %v", node, err)
	}
}

// Start starts a stopped node again; it rejoins with the CIB it had.
func (c *Cluster) Start(node string) {
	c.t.Helper()
	if _, err := docker("start", node); err != nil {
		c.t.Fatalf("start %s: %v", node, err)
	}
}

// Running reports whether node's container runs, and since when.
func (c *Cluster) Running(node string) (bool, time.Time, error) {
	out, err := docker("inspect", "-f", "{{.State.Running}} {{.State.StartedAt}}", node)
	if err != nil {
		return false, time.Time{}, err
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return false, time.Time{}, fmt.Errorf("inspect %s: %q", node, out)
	}
	at, err := time.Parse(time.RFC3339Nano, f[1])
	return f[0] == "true", at, err
}

const partitionChain = "HAFW-PARTITION"

// Partition cuts node off from every other node: inside node, iptables
// drops all traffic from and to their addresses, so corosync (knet over
// UDP) loses them while docker exec keeps working.
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

// Memory is each running node's memory use as docker stats reports it.
func (c *Cluster) Memory() (map[string]string, error) {
	out, err := docker(append([]string{"stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"}, c.Nodes...)...)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if name, use, ok := strings.Cut(line, " "); ok {
			m[name] = use
		}
	}
	return m, err
}

// CollectLogs copies each node's /var/log/pacemaker and /var/log/corosync
// and its entrypoint's output into dir/<node>/; it works on stopped nodes
// too. It returns the first error and goes on with the rest.
func (c *Cluster) CollectLogs(dir string) error {
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	for _, n := range c.Nodes {
		nd := filepath.Join(dir, n)
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return err
		}
		for _, p := range []string{"/var/log/pacemaker", "/var/log/corosync"} {
			if _, err := docker("cp", n+":"+p, nd); err != nil {
				keep(err)
			}
		}
		out, err := docker("logs", n)
		if err != nil {
			keep(err)
		}
		keep(os.WriteFile(filepath.Join(nd, "entrypoint.log"), []byte(out), 0o644))
		if cib, err := c.Exec(n, "cibadmin", "-Q"); err == nil {
			keep(os.WriteFile(filepath.Join(nd, "cib.xml"), []byte(cib), 0o644))
		}
	}
	return first
}

// Down removes the nodes and the network. Up arranges for it at the end
// of the test; calling it earlier is allowed.
func (c *Cluster) Down() {
	if c.removed {
		return
	}
	c.removed = true
	if len(c.Nodes) > 0 {
		if out, err := docker(append([]string{"rm", "-f", "-v"}, c.Nodes...)...); err != nil {
			c.t.Logf("removing nodes of %s: %v\n%s", c.Name, err, out)
		}
	}
	if out, err := docker("network", "rm", c.Name); err != nil && !strings.Contains(out, "not found") {
		c.t.Logf("removing network %s: %v\n%s", c.Name, err, out)
	}
}

func (c *Cluster) cleanup() {
	if c.t.Failed() && !c.removed {
		if err := c.CollectLogs(c.logDir); err != nil {
			c.t.Logf("collecting logs: %v", err)
		}
		c.t.Logf("logs of cluster %s in %s", c.Name, c.logDir)
	}
	c.Down()
}

// reapLeftovers removes hafw containers and networks older than maxAge:
// what a killed test binary could not remove.
func reapLeftovers(t testing.TB, maxAge time.Duration) {
	old := func(created string) bool {
		sec, err := strconv.ParseInt(created, 10, 64)
		return err == nil && time.Since(time.Unix(sec, 0)) > maxAge
	}
	out, err := docker("ps", "-a", "--filter", "label="+labelCreated, "--format", `{{.Names}} {{.Label "`+labelCreated+`"}}`)
	if err != nil {
		t.Logf("listing leftovers: %v", err)
		return
	}
	for _, line := range strings.Split(out, "\n") {
		if name, created, ok := strings.Cut(line, " "); ok && strings.HasPrefix(name, "hafw-") && old(created) {
			t.Logf("removing leftover container %s", name)
			_, _ = docker("rm", "-f", "-v", name)
		}
	}
	out, err = docker("network", "ls", "--filter", "label="+labelCreated, "--format", `{{.Name}} {{.Label "`+labelCreated+`"}}`)
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		if name, created, ok := strings.Cut(line, " "); ok && strings.HasPrefix(name, "hafw-") && old(created) {
			t.Logf("removing leftover network %s", name)
			_, _ = docker("network", "rm", name)
		}
	}
}

// capNames are the capabilities by number, as docker --cap-add spells them.
var capNames = [...]string{"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
	"SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
	"NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
	"AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
	"BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"}

// capsNotIn lists the capabilities missing from a bounding set.
func capsNotIn(bounding uint64) []string {
	var missing []string
	for i, name := range capNames {
		if bounding&(1<<i) == 0 {
			missing = append(missing, name)
		}
	}
	return missing
}

// capabilityArgs gives the nodes every capability this machine can give.
// --privileged asks runc for all of them and fails ("unable to apply caps:
// operation not permitted") where the machine's own bounding set lacks one
// (CAP_SYS_RESOURCE on some sandboxes); then all but the missing ones are
// added instead. corosync needs SYS_NICE and IPC_LOCK, Partition NET_ADMIN.
func capabilityArgs() []string {
	var missing []string
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "CapBnd:"); ok {
				if b, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
					missing = capsNotIn(b)
				}
			}
		}
	}
	if len(missing) == 0 {
		return []string{"--privileged"}
	}
	args := []string{"--cap-add", "ALL", "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"}
	for _, m := range missing {
		args = append(args, "--cap-drop", m)
	}
	return args
}

// nodeImage is the image to run: given, from the environment, or built.
func nodeImage(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if img := os.Getenv("HAFW_NODE_IMAGE"); img != "" {
		return img, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "testcluster/docker/build-image.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build-image.sh: %v\n%s", err, tailLines(stderr.String(), 30))
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return "", fmt.Errorf("build-image.sh printed no image")
	}
	return lines[len(lines)-1], nil
}

func agentsDir(given string) (string, error) {
	dir := given
	if dir == "" {
		dir = os.Getenv("HAFW_AGENTS_DIR")
	}
	if dir == "" {
		root, err := moduleRoot()
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

// moduleRoot is the folder holding go.mod, above the working directory
// (go test runs in the package's folder).
func moduleRoot() (string, error) {
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

func docker(args ...string) (string, error) {
	return dockerContext(context.Background(), args...)
}

// dockerContext runs the docker CLI under dockerWait (and ctx); the error
// carries the exit status and the output.
func dockerContext(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, dockerWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, &cmdError{args: args, out: s, err: err}
	}
	return s, nil
}

type cmdError struct {
	args []string
	out  string
	err  error
}

func (e *cmdError) Error() string {
	return fmt.Sprintf("docker %s: %v: %s", strings.Join(e.args, " "), e.err, tailLines(e.out, 20))
}

func (e *cmdError) Unwrap() error { return e.err }

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
