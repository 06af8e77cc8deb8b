package vagrantcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Fencing with fence_virsh, the agent of Debian's fence-agents (in the box):
// it logs in over ssh to the machine that runs the VMs and powers a domain
// off and on with virsh. Here that machine is this host, so each cluster
// gets its own sshd on this host (started by Create, stopped by Destroy):
//
//   - it listens only on the host's address on the cluster's own libvirt
//     network, on a free port, so no other machine can reach it;
//   - it admits root only, with one key, only from the cluster's subnet
//     (AllowUsers root@SUBNET and from="SUBNET" in its authorized_keys),
//     with no forwarding of any kind (restrict,pty: fence_virsh needs a
//     terminal for its shell prompt);
//   - its host key and the client key are made per cluster; the client key
//     is installed in every node as /etc/hafw/fence_key (0600, read by
//     pacemaker-fenced, which runs as root) and the host key in root's
//     known_hosts there, so the nodes verify the host.
//
// The price: a node of a test cluster can get a root shell on this host.
// The nodes are our own VMs on an isolated network, alive for one test;
// fence_virsh drives an interactive shell (prompt, then virsh commands),
// so a forced command cannot narrow it further without imitating a shell.
const (
	fenceKeyInNode = "/etc/hafw/fence_key"
	sshdPath       = "/usr/sbin/sshd"
)

// fenceServer is a cluster's sshd for fence_virsh.
type fenceServer struct {
	dir    string // keys, sshd_config, pid file, log
	state  *clusterState
	hostIP netip.Addr // this host on the cluster network
	port   int
}

// newFenceServer makes the keys in dir; the server starts once the
// cluster network exists (start).
func newFenceServer(dir string, s *clusterState) (*fenceServer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Stat(sshdPath); err != nil {
		return nil, fmt.Errorf("no sshd on this host (setup.sh installs openssh-server): %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandWait)
	defer cancel()
	for _, key := range []string{"host_key", "client_key"} {
		if _, err := run(ctx, nil, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", s.Name+"-"+key, "-f", filepath.Join(dir, key)); err != nil {
			return nil, err
		}
	}
	return &fenceServer{dir: dir, state: s}, nil
}

// sshdConfig is the server's configuration: see the package comment of
// fencing above.
func sshdConfig(dir string, listen netip.AddrPort, subnet netip.Prefix) string {
	return strings.Join([]string{
		"ListenAddress " + listen.String(),
		"HostKey " + filepath.Join(dir, "host_key"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"AllowUsers root@" + subnet.String(),
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"HostbasedAuthentication no",
		"UsePAM no",
		"StrictModes yes",
		"AllowTcpForwarding no",
		"AllowStreamLocalForwarding no",
		"AllowAgentForwarding no",
		"X11Forwarding no",
		"PermitTunnel no",
		"PermitUserEnvironment no",
		"PermitUserRC no",
		// Sessions of a fencer that was itself powered off end on their own.
		"ClientAliveInterval 5",
		"ClientAliveCountMax 3",
		"LogLevel VERBOSE",
		"",
	}, "\n")
}

// authorizedKey is the client key's line: usable only from subnet, with a
// terminal and nothing else.
func authorizedKey(pub string, subnet netip.Prefix) string {
	return fmt.Sprintf("from=\"%s\",restrict,pty %s\n", subnet, strings.TrimSpace(pub))
}

// knownHost is the known_hosts line of the server's host key.
func knownHost(addr netip.AddrPort, hostPub string) string {
	f := strings.Fields(hostPub)
	if len(f) < 2 {
		return ""
	}
	return fmt.Sprintf("[%s]:%d %s %s\n", addr.Addr(), addr.Port(), f[0], f[1])
}

// start launches the sshd on the host's address of the cluster network.
func (f *fenceServer) start(ctx context.Context) error {
	x, err := run(ctx, nil, nil, "virsh", "net-dumpxml", f.state.ClusterNet)
	if err != nil {
		return err
	}
	addrs, err := parseNetXML([]byte(x))
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if f.state.ClusterSubnet.Contains(a.Addr()) {
			f.hostIP = a.Addr()
		}
	}
	if !f.hostIP.IsValid() {
		return fmt.Errorf("network %s: no host address in %s", f.state.ClusterNet, f.state.ClusterSubnet)
	}
	if f.port, err = freePort(); err != nil {
		return err
	}
	pub, err := os.ReadFile(filepath.Join(f.dir, "client_key.pub"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.dir, "authorized_keys"), []byte(authorizedKey(string(pub), f.state.ClusterSubnet)), 0o600); err != nil {
		return err
	}
	cfg := filepath.Join(f.dir, "sshd_config")
	listen := netip.AddrPortFrom(f.hostIP, uint16(f.port))
	if err := os.WriteFile(cfg, []byte(sshdConfig(f.dir, listen, f.state.ClusterSubnet)), 0o600); err != nil {
		return err
	}
	// sshd's privilege separation directory (made by its init script
	// elsewhere; nothing here runs that).
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	if _, err := run(ctx, nil, nil, sshdPath, "-t", "-f", cfg); err != nil {
		return err
	}
	// sshd forks into the background and writes its pid file.
	if _, err := run(ctx, nil, nil, sshdPath, "-f", cfg, "-E", filepath.Join(f.dir, "sshd.log")); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", listen.String(), time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshd not listening on %s: %v", listen, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freePort is a TCP port free on every address of this host right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp4", ":0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// installFenceKey puts the client key and the server's host key into
// every node.
func (b *Backend) installFenceKey(ctx context.Context) error {
	f := b.fence
	hostPub, err := os.ReadFile(filepath.Join(f.dir, "host_key.pub"))
	if err != nil {
		return err
	}
	line := knownHost(netip.AddrPortFrom(f.hostIP, uint16(f.port)), string(hostPub))
	script := `set -e; umask 077; mkdir -p /etc/hafw /root/.ssh; cat >"$1"; chmod 600 "$1"; printf '%s' "$2" >>/root/.ssh/known_hosts`
	var errs []error
	for _, n := range b.state.Nodes {
		key, err := os.Open(filepath.Join(f.dir, "client_key"))
		if err != nil {
			return err
		}
		cmd := b.Command(ctx, n, "sh", "-c", script, "fence-key", fenceKeyInNode, line)
		cmd.Stdin = key
		out, err := cmd.CombinedOutput()
		key.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("fence key into %s: %w: %s", n, err, strings.TrimSpace(string(out))))
		}
	}
	return errors.Join(errs...)
}

// Fencer implements harness.Backend: fence_virsh through this cluster's
// sshd on the host; a node's port is its libvirt domain.
func (b *Backend) Fencer() (string, []string, error) {
	if b.fence == nil || b.fence.port == 0 {
		return "", nil, errors.New("cluster created without fencing")
	}
	var hostMap []string
	for _, n := range b.state.Nodes {
		hostMap = append(hostMap, n+":"+b.state.domain(n))
	}
	return "fence_virsh", []string{
		"ip=" + b.fence.hostIP.String(),
		"ipport=" + strconv.Itoa(b.fence.port),
		"username=root",
		"identity_file=" + fenceKeyInNode,
		// ssh from a node takes a few seconds under software emulation;
		// the agent's default allows 5 s for the login.
		"login_timeout=30",
		"pcmk_host_map=" + strings.Join(hostMap, ";"),
	}, nil
}

// stopFenceServer stops the sshd whose folder is dir, if it runs.
func stopFenceServer(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "sshd.pid"))
	if err != nil {
		return nil // never started
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("sshd pid file: %w", err)
	}
	// Only our sshd: the pid may have been reused since.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), filepath.Join(dir, "sshd_config")) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	for range 50 {
		if gone(pid) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("sshd %d still running", pid)
}

// gone reports whether pid has exited; a zombie has (PID 1 here need not
// reap the daemons it inherits at once).
func gone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(data), ')')
	return i < 0 || strings.HasPrefix(strings.TrimSpace(string(data[i+1:])), "Z")
}
