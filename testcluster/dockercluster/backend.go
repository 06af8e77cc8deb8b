// Package dockercluster is the Docker backend of the test-cluster harness
// (testcluster/harness): each node is a container of the hafw-node image
// (Debian bookworm's corosync, pacemaker, pcs, crmsh, resource-agents,
// fence-agents, haproxy), built locally from Debian packages by
// build-image.sh and cached by a hash of its recipe. The container's
// entrypoint writes corosync.conf (knet, all node addresses), installs
// the project's .deb ($HAFW_NODE_DEB, mounted read-only; run-e2e.sh builds
// it) or else copies the built agents into /usr/lib/ocf/resource.d/ha-framework,
// then starts corosync and pacemakerd as its children, so the image never
// depends on the code under test.
//
// A cluster has its own Docker network with a fixed subnet (so a restarted
// node keeps its address), a fresh corosync authkey, and node containers
// named <cluster>-n1.. whose hostnames are the Pacemaker node names.
// Nothing is published on the host: tests reach the nodes through docker
// exec, or at their addresses on the network's bridge, which this host is
// on (a client of the floating-IP scenario). A node loss is docker kill -s
// KILL (its PID 1, so corosync and every Pacemaker daemon at once);
// fencing is fence_docker (fencing.go).
// AddNode creates one more node on a running cluster's network (node 4 of
// a 3-node cluster, at the next address), created but not started, so the
// members can be told of it first. Containers and networks of runs older
// than an hour (crashed test binaries) are removed by the next Create,
// except those of a kept cluster (Spec.Keep, make demo), which Remove
// deletes by name.
//
// Remote nodes (Spec.RemoteNodes) are containers <cluster>-r1.. of the
// hafw-remote image (build-image.sh --remote: pacemaker-remote instead of
// pacemaker and corosync), whose entrypoint installs the agents the same
// way and runs pacemaker-remoted; their hostnames are <cluster>-r1-host..,
// not their Pacemaker names. Every node gets the cluster's Pacemaker
// Remote key, fresh as the corosync one.
//
//	c := harness.Up(t, dockercluster.New(""), nil)
package dockercluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/harness"
)

const (
	labelCluster = "hafw.cluster"
	labelCreated = "hafw.created" // unix seconds, read by the reaper
	labelKept    = "hafw.kept"    // unix seconds, instead of labelCreated: never reaped
	labelDir     = "hafw.dir"     // the host folder of the cluster's key and TLS material
	leftoverAge  = time.Hour
	dockerWait   = 2 * time.Minute // bound of every docker command
	buildWait    = 20 * time.Minute
)

// Backend runs cluster nodes as containers of this host's Docker Engine.
type Backend struct {
	image   string // "" until Create: $HAFW_NODE_IMAGE or build-image.sh
	name    string
	nodes   []string
	remotes map[string]bool // containers of remote nodes
	dir     string          // authkeys, TLS material
	fence   bool
	// What AddNode needs to provision one more node as Create did.
	subnet  netip.Prefix
	pairs   []string // name=ip, in node id order
	common  []string // docker run options every full node shares
	created string   // the label of its creation time: labelCreated, or labelKept
}

// New is a Docker backend for one cluster. image is the node image; ""
// means $HAFW_NODE_IMAGE, else the output of build-image.sh (which reuses
// a cached image).
func New(image string) *Backend { return &Backend{image: image} }

// Kind implements harness.Backend.
func (b *Backend) Kind() string { return "docker" }

// Create implements harness.Backend.
func (b *Backend) Create(ctx context.Context, spec harness.Spec) ([]harness.Node, error) {
	if _, err := docker(ctx, "info", "--format", "{{.ServerVersion}}"); err != nil {
		return nil, fmt.Errorf("no Docker Engine (run testcluster/dockercluster/dockerd.sh): %v", err)
	}
	reapLeftovers(ctx, leftoverAge)
	image, err := nodeImage(ctx, b.image, "HAFW_NODE_IMAGE")
	if err != nil {
		return nil, err
	}
	var remoteImage string
	if spec.RemoteNodes > 0 {
		if remoteImage, err = nodeImage(ctx, "", "HAFW_REMOTE_IMAGE", "--remote"); err != nil {
			return nil, err
		}
	}
	b.image, b.name, b.fence = image, spec.Name, spec.Fencing
	if b.dir, err = os.MkdirTemp("", spec.Name+"-"); err != nil {
		return nil, err
	}
	b.created = labelCreated
	if spec.Keep {
		b.created = labelKept
	}
	subnet, err := createNetwork(ctx, b.name, b.created)
	if err != nil {
		return nil, err
	}
	b.subnet = subnet
	var nodes []harness.Node
	for i := 1; i <= spec.Nodes; i++ {
		n := b.nodeAt(i)
		nodes = append(nodes, n)
		b.pairs = append(b.pairs, n.Name+"="+n.IP)
	}
	key := filepath.Join(b.dir, "authkey")
	if err := os.WriteFile(key, harness.RandomBytes(256), 0o400); err != nil {
		return nodes, err
	}
	// pcs generates Pacemaker Remote keys of this size.
	remoteKey := filepath.Join(b.dir, "pacemaker-authkey")
	if err := os.WriteFile(remoteKey, harness.RandomBytes(4096), 0o400); err != nil {
		return nodes, err
	}
	var fenceArgs []string
	if spec.Fencing {
		if fenceArgs, err = b.fencingMounts(); err != nil {
			return nodes, err
		}
	}
	var extra []string
	for host, inNode := range spec.Files {
		extra = append(extra, "-v", host+":"+inNode+":ro")
	}
	agents, err := agentMounts(spec.AgentsDir, os.Getenv("HAFW_NODE_DEB"))
	if err != nil {
		return nodes, err
	}
	extra = append(extra, agents...)
	// Remote nodes get the same files and agents, but no corosync key, no
	// fencing material (fence devices never run on them) and no Docker
	// Engine (Spec.Docker is for full nodes).
	remoteExtra := slices.Clone(extra)
	if spec.Docker {
		// The node's engine keeps its images and containers on a volume:
		// its storage driver cannot work on the node's overlay root.
		extra = append(extra, "-e", "HAFW_DOCKER=1", "-v", "/var/lib/docker")
	}
	b.common = []string{"-e", "HAFW_CLUSTER=" + b.name,
		"-e", "HAFW_TOKEN_MS=" + tokenMS(spec.TokenMS),
		"-v", key + ":/hafw/authkey:ro",
		"-v", remoteKey + ":/hafw/pacemaker-authkey:ro",
		// /run is volatile on a real machine: a node killed and started
		// again must not find its agents' state files (probes would
		// report resources still active there).
		"--tmpfs", "/run:rw,nosuid,nodev,mode=755"}
	if v := os.Getenv("HAFW_PCMK_DEBUG"); v != "" {
		// Pacemaker's own debug switch (PCMK_debug: "yes" or daemon
		// names), as /etc/default/pacemaker would set it: the daemons
		// inherit the entrypoint's environment. It shows, for instance,
		// the controller's waits before it runs the scheduler.
		b.common = append(b.common, "-e", "PCMK_debug="+v)
	}
	caps := capabilityArgs()
	b.common = append(b.common, caps...)
	b.common = append(b.common, fenceArgs...)
	b.common = append(b.common, extra...)
	for _, n := range nodes {
		if err := b.createNode(ctx, n, true); err != nil {
			return nodes, err
		}
	}
	b.remotes = map[string]bool{}
	for i := 1; i <= spec.RemoteNodes; i++ {
		n := harness.Node{Name: fmt.Sprintf("%s-r%d", b.name, i), IP: nth(b.subnet.Addr(), 200+i).String(), Remote: true}
		nodes = append(nodes, n)
		args := []string{"run", "-d", "--name", n.Name, "--hostname", n.Name + "-host",
			"--network", b.name, "--ip", n.IP,
			"--label", labelCluster + "=" + b.name, "--label", b.created + "=" + strconv.FormatInt(time.Now().Unix(), 10),
			"--label", labelDir + "=" + b.dir,
			"-v", remoteKey + ":/hafw/pacemaker-authkey:ro",
			"--tmpfs", "/run:rw,nosuid,nodev,mode=755"}
		args = append(args, caps...)
		args = append(args, remoteExtra...)
		args = append(args, remoteImage)
		b.nodes = append(b.nodes, n.Name)
		b.remotes[n.Name] = true
		if _, err := docker(ctx, args...); err != nil {
			return nodes, err
		}
	}
	return nodes, nil
}

// AddNode implements harness.NodeAdder: node i+1 of i, on the same network
// and provisioned alike, its nodelist all of them; created, not started.
func (b *Backend) AddNode(ctx context.Context) (harness.Node, error) {
	if !b.subnet.IsValid() {
		return harness.Node{}, errors.New("AddNode before Create")
	}
	n := b.nodeAt(len(b.pairs) + 1)
	if !b.subnet.Contains(netip.MustParseAddr(n.IP)) {
		return harness.Node{}, fmt.Errorf("no address left for %s in %s", n.Name, b.subnet)
	}
	b.pairs = append(b.pairs, n.Name+"="+n.IP)
	return n, b.createNode(ctx, n, false)
}

// nodeAt is node i (from 1): its name, and an address clear of the
// network's gateway (.1).
func (b *Backend) nodeAt(i int) harness.Node {
	return harness.Node{Name: fmt.Sprintf("%s-n%d", b.name, i), IP: nth(b.subnet.Addr(), 10+i).String()}
}

// createNode creates n's container with the nodelist of b.pairs, and
// starts it when start is set.
func (b *Backend) createNode(ctx context.Context, n harness.Node, start bool) error {
	verb := []string{"create"}
	if start {
		verb = []string{"run", "-d"}
	}
	args := append(verb, "--name", n.Name, "--hostname", n.Name,
		"--network", b.name, "--ip", n.IP,
		"--label", labelCluster+"="+b.name, "--label", b.created+"="+strconv.FormatInt(time.Now().Unix(), 10),
		"--label", labelDir+"="+b.dir,
		"-e", "HAFW_NODES="+strings.Join(b.pairs, " "))
	args = append(args, b.common...)
	args = append(args, b.image)
	b.nodes = append(b.nodes, n.Name)
	_, err := docker(ctx, args...)
	return err
}

// Command implements harness.Backend: docker exec.
func (b *Backend) Command(ctx context.Context, node string, cmd ...string) *exec.Cmd {
	// -i: a caller may feed the command (docker load reads an image from stdin).
	return exec.CommandContext(ctx, "docker", append([]string{"exec", "-i", node}, cmd...)...)
}

// PowerOff implements harness.Backend: SIGKILL to the container's PID 1.
func (b *Backend) PowerOff(ctx context.Context, node string) error {
	_, err := docker(ctx, "kill", "-s", "KILL", node)
	return err
}

// PowerOn implements harness.Backend.
func (b *Backend) PowerOn(ctx context.Context, node string) error {
	_, err := docker(ctx, "start", node)
	return err
}

// Running implements harness.Backend.
func (b *Backend) Running(ctx context.Context, node string) (bool, time.Time, error) {
	out, err := docker(ctx, "inspect", "-f", "{{.State.Running}} {{.State.StartedAt}}", node)
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

// Memory implements harness.MemoryReporter: docker stats.
func (b *Backend) Memory(ctx context.Context, nodes []string) (map[string]string, error) {
	out, err := docker(ctx, append([]string{"stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"}, nodes...)...)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if name, use, ok := strings.Cut(line, " "); ok {
			m[name] = use
		}
	}
	return m, err
}

// CollectLogs implements harness.Backend: /var/log/pacemaker,
// /var/log/corosync and the entrypoint's output; stopped nodes too.
func (b *Backend) CollectLogs(ctx context.Context, node, dir string) error {
	var first error
	keep := func(err error) {
		if first == nil && err != nil {
			first = err
		}
	}
	logs := []string{"/var/log/pacemaker", "/var/log/corosync"}
	if b.remotes[node] {
		logs = logs[:1]
	}
	for _, p := range logs {
		_, err := docker(ctx, "cp", node+":"+p, dir)
		keep(err)
	}
	out, err := docker(ctx, "logs", node)
	keep(err)
	keep(os.WriteFile(filepath.Join(dir, "entrypoint.log"), []byte(out), 0o644))
	return first
}

// Destroy implements harness.Backend: the nodes, the network, the key.
func (b *Backend) Destroy(ctx context.Context) error {
	var errs []error
	if len(b.nodes) > 0 {
		if _, err := docker(ctx, append([]string{"rm", "-f", "-v"}, b.nodes...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if b.name != "" {
		if out, err := docker(ctx, "network", "rm", b.name); err != nil && !strings.Contains(out, "not found") {
			errs = append(errs, err)
		}
	}
	if b.dir != "" {
		errs = append(errs, os.RemoveAll(b.dir))
	}
	return errors.Join(errs...)
}

// Remove deletes the cluster called name, as a Backend that created it
// would (nodes, network, key and TLS folder), for a kept cluster whose
// creator has exited. Nothing of that name is not an error.
func Remove(ctx context.Context, name string) error {
	out, err := docker(ctx, "ps", "-a", "--filter", "label="+labelCluster+"="+name, "--format", `{{.Names}} {{.Label "`+labelDir+`"}}`)
	if err != nil {
		return err
	}
	b := &Backend{name: name}
	for _, line := range strings.Split(out, "\n") {
		node, dir, _ := strings.Cut(strings.TrimSpace(line), " ")
		if node == "" {
			continue
		}
		b.nodes = append(b.nodes, node)
		if ownDir(dir, name) {
			b.dir = dir
		}
	}
	if out, err := docker(ctx, "network", "ls", "-q", "--filter", "name=^"+name+"$"); err == nil && out == "" {
		b.name = ""
	}
	return b.Destroy(ctx)
}

// ownDir reports whether dir, read from a node's label, is a folder Create
// made for the cluster name (a temporary folder named after it), so that
// Remove never deletes anything else a label could name.
func ownDir(dir, name string) bool {
	return dir != "" && filepath.IsAbs(dir) && filepath.Dir(dir) == filepath.Clean(os.TempDir()) &&
		strings.HasPrefix(filepath.Base(dir), name+"-")
}

// tokenMS is the token for node-lib.sh: empty means corosync's default.
func tokenMS(ms int) string {
	if ms <= 0 {
		return ""
	}
	return strconv.Itoa(ms)
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
func createNetwork(ctx context.Context, name, createdLabel string) (netip.Prefix, error) {
	var last error
	for range 5 {
		created := strconv.FormatInt(time.Now().Unix(), 10)
		labels := []string{"--label", labelCluster + "=" + name, "--label", createdLabel + "=" + created}
		if _, err := docker(ctx, append([]string{"network", "create"}, append(labels, name)...)...); err != nil {
			return netip.Prefix{}, err
		}
		out, err := docker(ctx, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", name)
		_, _ = docker(ctx, "network", "rm", name)
		if err != nil {
			return netip.Prefix{}, err
		}
		p, err := netip.ParsePrefix(strings.Fields(out + " none")[0])
		if err != nil || !p.Addr().Is4() || p.Bits() > 24 {
			return netip.Prefix{}, fmt.Errorf("network %s: unusable subnet %q", name, out)
		}
		if _, last = docker(ctx, append([]string{"network", "create", "--subnet", p.String()}, append(labels, name)...)...); last == nil {
			return p, nil
		}
		// Another run took the subnet in between: ask again.
	}
	return netip.Prefix{}, last
}

// reapLeftovers removes hafw containers and networks older than maxAge:
// what a killed test binary could not remove.
func reapLeftovers(ctx context.Context, maxAge time.Duration) {
	old := func(created string) bool {
		sec, err := strconv.ParseInt(created, 10, 64)
		return err == nil && time.Since(time.Unix(sec, 0)) > maxAge
	}
	out, err := docker(ctx, "ps", "-a", "--filter", "label="+labelCreated, "--format", `{{.Names}} {{.Label "`+labelCreated+`"}}`)
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		if name, created, ok := strings.Cut(line, " "); ok && strings.HasPrefix(name, "hafw-") && old(created) {
			_, _ = docker(ctx, "rm", "-f", "-v", name)
		}
	}
	out, err = docker(ctx, "network", "ls", "--filter", "label="+labelCreated, "--format", `{{.Name}} {{.Label "`+labelCreated+`"}}`)
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		if name, created, ok := strings.Cut(line, " "); ok && strings.HasPrefix(name, "hafw-") && old(created) {
			_, _ = docker(ctx, "network", "rm", name)
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

// agentMounts says how a node gets the agents: the .deb named by deb
// (make packages; run-e2e.sh sets $HAFW_NODE_DEB), which the entrypoint
// installs with dpkg, so every scenario also tests the package; else the
// built agents in dir, copied in by the entrypoint; else none (dir "").
func agentMounts(dir, deb string) ([]string, error) {
	switch {
	case deb != "":
		abs, err := filepath.Abs(deb)
		if err != nil {
			return nil, err
		}
		if st, err := os.Stat(abs); err != nil || !st.Mode().IsRegular() || !strings.HasSuffix(abs, ".deb") {
			return nil, fmt.Errorf("HAFW_NODE_DEB=%s: not a .deb file (make packages builds one in dist/)", deb)
		}
		return []string{"-v", abs + ":" + nodeDeb + ":ro"}, nil
	case dir != "":
		return []string{"-v", dir + ":/hafw/bin:ro"}, nil
	}
	return nil, nil
}

// nodeDeb is where a node finds the package to install (entrypoint.sh).
const nodeDeb = "/hafw/pkg/ha-framework.deb"

// nodeImage is the image to run: given, from the environment variable
// env, or built by build-image.sh with args.
func nodeImage(ctx context.Context, given, env string, args ...string) (string, error) {
	if given != "" {
		return given, nil
	}
	if img := os.Getenv(env); img != "" {
		return img, nil
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, buildWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "testcluster/dockercluster/build-image.sh"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build-image.sh: %v\n%s", err, harness.TailLines(stderr.String(), 30))
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return "", fmt.Errorf("build-image.sh printed no image")
	}
	return lines[len(lines)-1], nil
}

// docker runs the docker CLI under dockerWait (and ctx); the error
// carries the exit status and the output.
func docker(ctx context.Context, args ...string) (string, error) {
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
	return fmt.Sprintf("docker %s: %v: %s", strings.Join(e.args, " "), e.err, harness.TailLines(e.out, 20))
}

func (e *cmdError) Unwrap() error { return e.err }
