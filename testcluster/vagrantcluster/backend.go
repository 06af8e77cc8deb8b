// Package vagrantcluster is the Vagrant/libvirt backend of the test-cluster
// harness (testcluster/harness): each node is a Debian 12 VM of the box
// build-box.sh makes from Debian packages (the same cluster packages as the
// Docker node image), booted by `vagrant up` with this folder's Vagrantfile
// and provisioned by provision.sh (node-lib.sh: the same corosync.conf and
// CIB seed as a Docker node). VMs run under KVM where the CPU has real
// hardware virtualisation, else under QEMU's software emulation.
//
// Every cluster has names of its own, derived from its harness name
// (hafw-<hex>): libvirt domains <name>-node1.., networks <name>-cluster and
// <name>-mgmt on /24 subnets no route or libvirt network of this host uses,
// and a folder <state>/clusters/<name> with Vagrant's machine state, the
// corosync key, the ssh configuration, the console logs and state.json
// (what Destroy removes). So clusters of two test binaries run side by side.
// Pacemaker node names (node1..) repeat between clusters; that is fine,
// they never meet.
//
// Commands run over plain ssh with the configuration `vagrant ssh-config`
// printed once after boot, one shared connection per node: a `vagrant ssh`
// per command would cost seconds of Ruby start-up. A node loss is `virsh
// destroy` (hard power-off); fencing is fence_virsh in the nodes, logging in
// to a per-cluster sshd on this host (fencing.go). Clusters whose test binary
// died more than an hour ago are removed by the next Create.
//
//	c := harness.Up(t, vagrantcluster.New(vagrantcluster.Options{}), nil)
package vagrantcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ha-framework/ha-framework/testcluster/harness"
)

// Bounds of single steps (Create as a whole is bounded by its context).
const (
	setupWait   = 20 * time.Minute // setup.sh + build-box.sh, a fresh box included
	upWait      = 15 * time.Minute // vagrant up
	commandWait = 2 * time.Minute  // virsh, ip, vagrant ssh-config, ...
	destroyWait = 3 * time.Minute  // vagrant destroy
	leftoverAge = time.Hour
)

// Options tune the backend; the zero value is what make e2e-vagrant uses.
type Options struct {
	// StateDir holds the Vagrant home (with the box) and the clusters'
	// folders; default $HAFW_VAGRANT_STATE, else /var/lib/hafw-vagrant
	// (as env.sh).
	StateDir string
	// Dir is this package's folder (Vagrantfile, setup.sh, build-box.sh);
	// default testcluster/vagrantcluster of the module.
	Dir string
	// MemoryMiB per VM, default the Vagrantfile's (512).
	MemoryMiB int
}

// Backend runs the nodes of one cluster as VMs of this host's libvirt.
type Backend struct {
	opts  Options
	state *clusterState // nil until Create named the cluster
	dir   string        // the cluster's folder
	ssh   string        // ssh -F file, "" until the nodes booted
	fence *fenceServer  // nil without Spec.Fencing
}

// New is a Vagrant backend for one cluster.
func New(opts Options) *Backend { return &Backend{opts: opts} }

// Kind implements harness.Backend.
func (b *Backend) Kind() string { return "vagrant" }

func (b *Backend) stateDir() string {
	if b.opts.StateDir != "" {
		return b.opts.StateDir
	}
	return harness.EnvOr("HAFW_VAGRANT_STATE", "/var/lib/hafw-vagrant")
}

func (b *Backend) clustersDir() string { return filepath.Join(b.stateDir(), "clusters") }

func (b *Backend) scriptDir() (string, error) {
	if b.opts.Dir != "" {
		return b.opts.Dir, nil
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "testcluster", "vagrant"), nil
}

// Create implements harness.Backend: host set-up (setup.sh, build-box.sh;
// both return at once when done before), names and subnets, vagrant up,
// then the ssh configuration, spec.Files and fencing.
func (b *Backend) Create(ctx context.Context, spec harness.Spec) ([]harness.Node, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the vagrant backend must run as root (libvirt, networks, sshd)")
	}
	if spec.Docker {
		return nil, errors.New("the vagrant backend has no Docker Engine in its nodes (the docker backend has)")
	}
	if spec.RemoteNodes > 0 {
		return nil, errors.New("the vagrant backend has no pacemaker_remote nodes (the docker backend has)")
	}
	scripts, err := b.scriptDir()
	if err != nil {
		return nil, err
	}
	box, err := b.reserve(ctx, spec, scripts)
	if err != nil {
		return nil, err
	}
	s := b.state
	var nodes []harness.Node
	for i, n := range s.Nodes {
		nodes = append(nodes, harness.Node{Name: n, IP: nodeIP(s.ClusterSubnet, i+1).String()})
	}
	if err := os.WriteFile(filepath.Join(b.dir, "authkey"), harness.RandomBytes(256), 0o400); err != nil {
		return nodes, err
	}
	var pairs []string
	for _, n := range nodes {
		pairs = append(pairs, n.Name+"="+n.IP)
	}
	s.Env = map[string]string{
		"VAGRANT_HOME":                     filepath.Join(b.stateDir(), "vagrant.d"),
		"VAGRANT_CWD":                      scripts,
		"VAGRANT_DOTFILE_PATH":             filepath.Join(b.dir, "dot-vagrant"),
		"VAGRANT_CHECKPOINT_DISABLE":       "1",
		"VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1",
		"VAGRANT_DEFAULT_PROVIDER":         "libvirt",
		"LIBVIRT_DEFAULT_URI":              "qemu:///system",
		"HAFW_BOX":                         box,
		"HAFW_CLUSTER":                     s.Name,
		"HAFW_NODES":                       strconv.Itoa(len(s.Nodes)),
		"HAFW_SUBNET":                      threeOctets(s.ClusterSubnet),
		"HAFW_MGMT_NET":                    s.MgmtSubnet.String(),
		"HAFW_DOMAIN_PREFIX":               s.DomainPrefix,
		"HAFW_CLUSTER_NET_NAME":            s.ClusterNet,
		"HAFW_MGMT_NET_NAME":               s.MgmtNet,
		"HAFW_CONSOLE_LOG":                 s.ConsoleLog,
		"HAFW_AUTHKEY":                     filepath.Join(b.dir, "authkey"),
		"HAFW_BIN":                         spec.AgentsDir,
	}
	if b.opts.MemoryMiB > 0 {
		s.Env["HAFW_VM_MEMORY"] = strconv.Itoa(b.opts.MemoryMiB)
	}
	if err := s.save(b.dir); err != nil {
		return nodes, err
	}
	if spec.Fencing {
		if b.fence, err = newFenceServer(filepath.Join(b.dir, "fence"), s); err != nil {
			return nodes, fmt.Errorf("fencing: %w", err)
		}
	}

	upLog := filepath.Join(b.dir, "vagrant-up.log")
	start := time.Now()
	upCtx, cancel := context.WithTimeout(ctx, upWait)
	err = vagrantTo(upCtx, s.Env, upLog, "up", "--parallel")
	cancel()
	appendLine(upLog, fmt.Sprintf("hafw: vagrant up took %s", time.Since(start).Round(100*time.Millisecond)))
	if err != nil {
		return nodes, fmt.Errorf("vagrant up: %w\n%s", err, tailFile(upLog, 30))
	}
	if err := b.writeSSHConfig(ctx); err != nil {
		return nodes, err
	}
	if spec.Fencing {
		if err := b.fence.start(ctx); err != nil {
			return nodes, fmt.Errorf("fencing: %w", err)
		}
		if err := b.installFenceKey(ctx); err != nil {
			return nodes, err
		}
	}
	if err := b.copyIntoNodes(ctx, spec.Files); err != nil {
		return nodes, err
	}
	appendLine(upLog, fmt.Sprintf("hafw: created in %s", time.Since(start).Round(100*time.Millisecond)))
	return nodes, nil
}

// reserve prepares the host, removes leftovers, names the cluster and
// takes its subnets, all under the host lock. It returns the box name.
func (b *Backend) reserve(ctx context.Context, spec harness.Spec, scripts string) (string, error) {
	unlock, err := hostLock(b.clustersDir())
	if err != nil {
		return "", err
	}
	defer unlock()
	setupCtx, cancel := context.WithTimeout(ctx, setupWait)
	defer cancel()
	env := map[string]string{"HAFW_VAGRANT_STATE": b.stateDir()}
	if out, err := run(setupCtx, env, nil, filepath.Join(scripts, "setup.sh")); err != nil {
		return "", fmt.Errorf("setup.sh: %w\n%s", err, harness.TailLines(out, 30))
	}
	if out, err := run(setupCtx, env, nil, filepath.Join(scripts, "build-box.sh")); err != nil {
		return "", fmt.Errorf("build-box.sh: %w\n%s", err, harness.TailLines(out, 30))
	}
	box, err := run(setupCtx, env, nil, filepath.Join(scripts, "build-box.sh"), "name")
	if err != nil {
		return "", err
	}
	reapLeftovers(ctx, b.clustersDir(), leftoverAge)

	used, err := usedSubnets(ctx, b.clustersDir())
	if err != nil {
		return "", err
	}
	free, err := freeSubnets(subnetCandidates(), used, 2)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(b.clustersDir(), spec.Name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err // an existing folder is another cluster's
	}
	b.dir = dir
	b.state = newState(spec.Name, spec.Nodes, [2]netip.Prefix{free[0], free[1]}, dir)
	if b.state.Owner, err = processOf(os.Getpid()); err != nil {
		return "", err
	}
	// Saved now, under the lock: the subnets are taken from here on.
	return strings.TrimSpace(box), b.state.save(dir)
}

// writeSSHConfig turns `vagrant ssh-config` into the ssh -F file of
// Command, once: the nodes' management addresses are DHCP leases that a
// node keeps across power cycles (same MAC, same machine-id).
func (b *Backend) writeSSHConfig(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, commandWait)
	defer cancel()
	out, err := run(ctx, b.state.Env, nil, "vagrant", "ssh-config")
	if err != nil {
		return fmt.Errorf("vagrant ssh-config: %w", err)
	}
	hosts, err := parseSSHConfig(out)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		seen[h.Alias] = true
	}
	for _, n := range b.state.Nodes {
		if !seen[n] {
			return fmt.Errorf("vagrant ssh-config: no entry for %s", n)
		}
	}
	control := filepath.Join(b.dir, "ssh")
	if err := os.MkdirAll(control, 0o700); err != nil {
		return err
	}
	path := filepath.Join(b.dir, "ssh_config")
	if err := os.WriteFile(path, []byte(renderSSHConfig(hosts, control)), 0o600); err != nil {
		return err
	}
	b.ssh = path
	return nil
}

// Command implements harness.Backend: ssh to the node (over the shared
// connection), sudo there. Input and output pass through.
func (b *Backend) Command(ctx context.Context, node string, cmd ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ssh", "-F", b.ssh, node, remoteCommand(cmd))
}

// closeSSH ends node's shared connection: after a power cycle it would
// hang until the keep-alives give up.
func (b *Backend) closeSSH(ctx context.Context, node string) {
	if b.ssh == "" {
		return
	}
	_, _ = run(ctx, nil, nil, "ssh", "-F", b.ssh, "-O", "exit", node)
}

// copyIntoNodes installs host files at their paths in every node, mode
// kept but not writable, in parallel.
func (b *Backend) copyIntoNodes(ctx context.Context, files map[string]string) error {
	if len(files) == 0 {
		return nil
	}
	hosts := make([]string, 0, len(files))
	for h := range files {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, node := range b.state.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, h := range hosts {
				if err := b.install(ctx, node, h, files[h]); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("copying %s to %s:%s: %w", h, node, files[h], err))
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// install copies the host file src to dst on node through ssh's input.
func (b *Backend) install(ctx context.Context, node, src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	mode := fmt.Sprintf("%o", fi.Mode().Perm()&^0o222)
	script := `set -e; mkdir -p "$(dirname "$1")"; cat >"$1.hafw-tmp"; chmod "$2" "$1.hafw-tmp"; mv -f "$1.hafw-tmp" "$1"`
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // large binaries under emulation
	defer cancel()
	cmd := b.Command(ctx, node, "sh", "-c", script, "install", dst, mode)
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// PowerOff implements harness.Backend: virsh destroy, the VM's power cord.
func (b *Backend) PowerOff(ctx context.Context, node string) error {
	if b.state == nil {
		return errors.New("no cluster")
	}
	_, err := run(ctx, nil, nil, "virsh", "destroy", b.state.domain(node))
	b.closeSSH(ctx, node)
	return err
}

// PowerOn implements harness.Backend: virsh start. The console log of the
// boots before is kept (libvirt truncates the file) in console-NODE.old.
func (b *Backend) PowerOn(ctx context.Context, node string) error {
	if b.state == nil {
		return errors.New("no cluster")
	}
	b.closeSSH(ctx, node)
	keepConsole(b.state.consoleLog(node))
	_, err := run(ctx, nil, nil, "virsh", "start", b.state.domain(node))
	return err
}

// keepConsole appends a console log to its .old file.
func keepConsole(path string) {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return
	}
	f, err := os.OpenFile(strings.TrimSuffix(path, ".log")+".old", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(data)
	_, _ = fmt.Fprintf(f, "\n===== hafw: power cycle at %s =====\n", time.Now().Format(time.RFC3339))
}

// Running implements harness.Backend: the domain's state, and since when
// its QEMU process runs.
func (b *Backend) Running(ctx context.Context, node string) (bool, time.Time, error) {
	if b.state == nil {
		return false, time.Time{}, errors.New("no cluster")
	}
	dom := b.state.domain(node)
	out, err := run(ctx, nil, nil, "virsh", "domstate", dom)
	if err != nil {
		return false, time.Time{}, err
	}
	if strings.TrimSpace(out) != "running" {
		// Powered off by fencing, perhaps: its connection is dead.
		b.closeSSH(ctx, node)
		return false, time.Time{}, nil
	}
	pid, err := qemuPID(dom)
	if err != nil {
		return true, time.Time{}, err
	}
	since, err := processStarted(pid)
	return true, since, err
}

// qemuLog is libvirt's log of a domain's QEMU (command line, errors).
func qemuLog(domain string) string { return filepath.Join("/var/log/libvirt/qemu", domain+".log") }

// qemuPID reads libvirt's pid file of a running domain.
func qemuPID(domain string) (int, error) {
	data, err := os.ReadFile(filepath.Join("/run/libvirt/qemu", domain+".pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// Memory implements harness.MemoryReporter: the resident memory of each
// node's QEMU process (guest memory it touched plus emulation overhead).
func (b *Backend) Memory(ctx context.Context, nodes []string) (map[string]string, error) {
	if b.state == nil {
		return nil, errors.New("no cluster")
	}
	m := map[string]string{}
	var errs []error
	for _, n := range nodes {
		pid, err := qemuPID(b.state.domain(n))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kib, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				m[n] = fmt.Sprintf("%.0fMiB qemu RSS", float64(kib)/1024)
			}
		}
	}
	return m, errors.Join(errs...)
}

// CollectLogs implements harness.Backend: the serial console (of every
// boot) and libvirt's QEMU log always; /var/log/pacemaker,
// /var/log/corosync and the journal when the node runs; its lines of the
// vagrant up output.
func (b *Backend) CollectLogs(ctx context.Context, node, dir string) error {
	if b.state == nil {
		return errors.New("no cluster")
	}
	var errs []error
	console := b.state.consoleLog(node)
	var all []byte
	if old, err := os.ReadFile(strings.TrimSuffix(console, ".log") + ".old"); err == nil {
		all = append(all, old...)
	}
	cur, err := os.ReadFile(console)
	errs = append(errs, err)
	all = append(all, cur...)
	errs = append(errs, os.WriteFile(filepath.Join(dir, "console.log"), all, 0o644))
	if q, err := os.ReadFile(qemuLog(b.state.domain(node))); err == nil {
		errs = append(errs, os.WriteFile(filepath.Join(dir, "qemu.log"), q, 0o644))
	}
	if up, err := os.ReadFile(filepath.Join(b.dir, "vagrant-up.log")); err == nil {
		var mine []string
		for _, line := range strings.Split(string(up), "\n") {
			if strings.Contains(line, " "+node+": ") || strings.HasPrefix(line, "hafw:") {
				mine = append(mine, line)
			}
		}
		errs = append(errs, os.WriteFile(filepath.Join(dir, "vagrant-up.log"), []byte(strings.Join(mine, "\n")+"\n"), 0o644))
	}
	if running, _, _ := b.Running(ctx, node); !running || b.ssh == "" {
		return errors.Join(errs...)
	}
	// tar of both folders through ssh's output, unpacked here.
	tarCtx, cancel := context.WithTimeout(ctx, commandWait)
	defer cancel()
	remote := b.Command(tarCtx, node, "tar", "-C", "/", "-czf", "-", "--ignore-failed-read", "var/log/pacemaker", "var/log/corosync")
	local := exec.CommandContext(tarCtx, "tar", "-xzf", "-", "-C", dir, "--strip-components=2")
	pipe, err := remote.StdoutPipe()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	local.Stdin = pipe
	var remoteErr, localErr bytes.Buffer
	remote.Stderr, local.Stderr = &remoteErr, &localErr
	if err := remote.Start(); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := local.Run(); err != nil {
		errs = append(errs, fmt.Errorf("tar: %w: %s", err, bytes.TrimSpace(localErr.Bytes())))
	}
	if err := remote.Wait(); err != nil {
		errs = append(errs, fmt.Errorf("tar on %s: %w: %s", node, err, bytes.TrimSpace(remoteErr.Bytes())))
	}
	journal := b.Command(tarCtx, node, "journalctl", "--no-pager", "-o", "short-precise")
	if out, err := journal.Output(); err == nil {
		errs = append(errs, os.WriteFile(filepath.Join(dir, "journal.txt"), out, 0o644))
	}
	return errors.Join(errs...)
}

// Destroy implements harness.Backend.
func (b *Backend) Destroy(ctx context.Context) error {
	if b.state == nil {
		return nil // Create failed before it named anything
	}
	for _, n := range b.state.Nodes {
		b.closeSSH(ctx, n)
	}
	return destroyCluster(ctx, b.state, b.dir)
}

// destroyCluster removes everything of a cluster, from what its folder
// records: the fence sshd, the VMs (vagrant destroy, then virsh for what
// it left), the networks, the folder. It goes on after errors.
func destroyCluster(ctx context.Context, s *clusterState, dir string) error {
	var errs []error
	errs = append(errs, stopFenceServer(filepath.Join(dir, "fence")))
	if _, err := os.Stat(filepath.Join(dir, "dot-vagrant")); err == nil && s.Env != nil {
		vctx, cancel := context.WithTimeout(ctx, destroyWait)
		err := vagrantTo(vctx, s.Env, filepath.Join(dir, "vagrant-destroy.log"), "destroy", "-f")
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("vagrant destroy: %w\n%s", err, tailFile(filepath.Join(dir, "vagrant-destroy.log"), 10)))
		}
	}
	for _, n := range s.Nodes {
		dom := s.domain(n)
		if _, err := run(ctx, nil, nil, "virsh", "-q", "dominfo", dom); err != nil {
			continue // gone (or never made)
		}
		_, _ = run(ctx, nil, nil, "virsh", "-q", "destroy", dom)
		if _, err := run(ctx, nil, nil, "virsh", "-q", "undefine", "--remove-all-storage", dom); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range s.Nodes {
		// Vagrant's disk of a domain that never got defined.
		_, _ = run(ctx, nil, nil, "virsh", "-q", "vol-delete", "--pool", "default", s.domain(n)+".img")
		// libvirt keeps a domain's QEMU log after the domain.
		_ = os.Remove(qemuLog(s.domain(n)))
	}
	for _, net := range []string{s.ClusterNet, s.MgmtNet} {
		if _, err := run(ctx, nil, nil, "virsh", "-q", "net-info", net); err != nil {
			continue
		}
		_, _ = run(ctx, nil, nil, "virsh", "-q", "net-destroy", net)
		if _, err := run(ctx, nil, nil, "virsh", "-q", "net-undefine", net); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, os.RemoveAll(dir))
	return errors.Join(errs...)
}

// reapLeftovers removes the clusters of test binaries that died (killed,
// crashed, timed out) without removing them, once they are older than
// maxAge. A cluster whose test binary still runs is kept, however old: a
// long run under software emulation can take hours.
func reapLeftovers(ctx context.Context, clustersDir string, maxAge time.Duration) {
	dirs, _ := filepath.Glob(filepath.Join(clustersDir, "hafw-*"))
	for _, d := range dirs {
		s, err := loadState(d)
		if err != nil {
			// A folder without state: Create died before saving it.
			if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > maxAge {
				_ = os.RemoveAll(d)
			}
			continue
		}
		if time.Since(s.Created) > maxAge && !s.Owner.alive() {
			_ = destroyCluster(ctx, s, d)
		}
	}
}

// vagrantTo runs vagrant with env, its output appended to logFile.
func vagrantTo(ctx context.Context, env map[string]string, logFile string, args ...string) error {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = run(ctx, env, f, "vagrant", args...)
	return err
}

// run is the one place that starts the backend's host commands: name with
// args under ctx, env added to this process's environment. The output
// (stdout and stderr) goes to out when given, else it is returned; the
// error carries the exit status and the output's tail.
func run(ctx context.Context, env map[string]string, out io.Writer, name string, args ...string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, commandWait)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var buf bytes.Buffer
	if out != nil {
		cmd.Stdout, cmd.Stderr = out, out
	} else {
		cmd.Stdout, cmd.Stderr = &buf, &buf
	}
	// A child that keeps the output open (a daemon) must not hold us.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	s := strings.TrimSpace(buf.String())
	if err != nil {
		return s, &cmdError{name: name, args: args, out: s, err: err}
	}
	return s, nil
}

type cmdError struct {
	name string
	args []string
	out  string
	err  error
}

func (e *cmdError) Error() string {
	return fmt.Sprintf("%s %s: %v: %s", e.name, strings.Join(e.args, " "), e.err, harness.TailLines(e.out, 20))
}

func (e *cmdError) Unwrap() error { return e.err }

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = fmt.Fprintln(f, line)
}

func tailFile(path string, n int) string {
	data, _ := os.ReadFile(path)
	return harness.TailLines(string(data), n)
}
