package vagrantcluster

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clusterState is what Destroy (of this run or, through the reaper, of a
// later one) needs to remove a cluster; Create writes it to the cluster's
// folder before it creates anything.
type clusterState struct {
	Name          string
	Nodes         []string // names, node1..
	DomainPrefix  string   // libvirt domain of a node: prefix + name
	ClusterNet    string   // libvirt networks
	MgmtNet       string
	ClusterSubnet netip.Prefix
	MgmtSubnet    netip.Prefix
	ConsoleLog    string            // serial console file, %s = node name
	Env           map[string]string // what the Vagrantfile reads
	Created       time.Time
	Owner         process // the test binary; a live one keeps its cluster
}

// process names a process across pid reuse.
type process struct {
	PID       int
	StartTick uint64 // field 22 of /proc/PID/stat
}

func (s *clusterState) domain(node string) string { return s.DomainPrefix + node }

func (s *clusterState) consoleLog(node string) string { return fmt.Sprintf(s.ConsoleLog, node) }

// nodeIP is the cluster address of the i-th node (from 1), as the
// Vagrantfile assigns it: .11, .12, ...
func nodeIP(subnet netip.Prefix, i int) netip.Addr {
	a := subnet.Masked().Addr().As4()
	a[3] = byte(10 + i)
	return netip.AddrFrom4(a)
}

// threeOctets is the Vagrantfile's HAFW_SUBNET form of a /24.
func threeOctets(p netip.Prefix) string {
	a := p.Masked().Addr().As4()
	return fmt.Sprintf("%d.%d.%d", a[0], a[1], a[2])
}

// newState names everything of cluster name (hafw-<hex>, unique on this
// host): the libvirt domains <name>-node1.., the networks <name>-cluster
// and <name>-mgmt.
func newState(name string, nodes int, subnets [2]netip.Prefix, dir string) *clusterState {
	s := &clusterState{
		Name:          name,
		DomainPrefix:  name + "-",
		ClusterNet:    name + "-cluster",
		MgmtNet:       name + "-mgmt",
		ClusterSubnet: subnets[0],
		MgmtSubnet:    subnets[1],
		ConsoleLog:    filepath.Join(dir, "console-%s.log"),
		Created:       time.Now(),
	}
	for i := 1; i <= nodes; i++ {
		s.Nodes = append(s.Nodes, fmt.Sprintf("node%d", i))
	}
	return s
}

func (s *clusterState) save(dir string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "state.json.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}

func loadState(dir string) (*clusterState, error) {
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var s clusterState
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return &s, nil
}

// subnetCandidates are the /24s a cluster may take, two per cluster:
// 192.168.130-250, clear of libvirt's defaults (122, vagrant-libvirt's 121)
// and run.sh's 56.
func subnetCandidates() []netip.Prefix {
	var c []netip.Prefix
	for third := 130; third <= 250; third++ {
		c = append(c, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(third), 0}), 24))
	}
	return c
}

// freeSubnets picks the first n candidates that overlap none of used.
func freeSubnets(candidates, used []netip.Prefix, n int) ([]netip.Prefix, error) {
	var free []netip.Prefix
	for _, c := range candidates {
		taken := false
		for _, u := range used {
			if c.Overlaps(u) {
				taken = true
				break
			}
		}
		if !taken {
			free = append(free, c)
			if len(free) == n {
				return free, nil
			}
		}
	}
	return nil, fmt.Errorf("no %d free /24 subnets among %d candidates (%d in use)", n, len(candidates), len(used))
}

// parseRoutes reads the destinations of `ip -4 route show table all`.
// Lines may start with a route type (local, broadcast, ...) before it.
func parseRoutes(out string) []netip.Prefix {
	var ps []netip.Prefix
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i < len(f) && i < 2; i++ {
			if f[i] == "default" {
				break
			}
			if p, err := netip.ParsePrefix(f[i]); err == nil {
				ps = append(ps, p.Masked())
				break
			}
			if a, err := netip.ParseAddr(f[i]); err == nil {
				ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
				break
			}
		}
	}
	return ps
}

// netXML is the part of `virsh net-dumpxml` that tells a network's subnet.
type netXML struct {
	IPs []struct {
		Address string `xml:"address,attr"`
		Netmask string `xml:"netmask,attr"`
		Prefix  string `xml:"prefix,attr"`
		Family  string `xml:"family,attr"`
	} `xml:"ip"`
}

// parseNetXML is the host's addresses on a libvirt network, each with its
// prefix length (IPv4 only).
func parseNetXML(data []byte) ([]netip.Prefix, error) {
	var n netXML
	if err := xml.Unmarshal(data, &n); err != nil {
		return nil, err
	}
	var ps []netip.Prefix
	for _, ip := range n.IPs {
		if ip.Family != "" && ip.Family != "ipv4" {
			continue
		}
		a, err := netip.ParseAddr(ip.Address)
		if err != nil {
			return nil, fmt.Errorf("network address %q: %w", ip.Address, err)
		}
		bits := 24
		switch {
		case ip.Prefix != "":
			if bits, err = strconv.Atoi(ip.Prefix); err != nil {
				return nil, fmt.Errorf("network prefix %q: %w", ip.Prefix, err)
			}
		case ip.Netmask != "":
			m, err := netip.ParseAddr(ip.Netmask)
			if err != nil || !m.Is4() {
				return nil, fmt.Errorf("netmask %q: %v", ip.Netmask, err)
			}
			b := m.As4()
			bits = 0
			for _, octet := range b {
				for ; octet&0x80 != 0; octet <<= 1 {
					bits++
				}
			}
		}
		ps = append(ps, netip.PrefixFrom(a, bits))
	}
	return ps, nil
}

// usedSubnets are the subnets this host already uses: its routes (Docker
// networks, the uplink), every libvirt network (started or not), and those
// reserved by the other clusters' state files (their networks may not
// exist yet).
func usedSubnets(ctx context.Context, clustersDir string) ([]netip.Prefix, error) {
	out, err := run(ctx, nil, nil, "ip", "-4", "route", "show", "table", "all")
	if err != nil {
		return nil, err
	}
	used := parseRoutes(out)
	names, err := run(ctx, nil, nil, "virsh", "-q", "net-list", "--all", "--name")
	if err != nil {
		return nil, err
	}
	for _, name := range strings.Fields(names) {
		x, err := run(ctx, nil, nil, "virsh", "net-dumpxml", name)
		if err != nil {
			continue // removed in between
		}
		ps, err := parseNetXML([]byte(x))
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", name, err)
		}
		for _, p := range ps {
			used = append(used, p.Masked())
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(clustersDir, "hafw-*"))
	for _, d := range dirs {
		if s, err := loadState(d); err == nil {
			used = append(used, s.ClusterSubnet, s.MgmtSubnet)
		}
	}
	return used, nil
}

// hostLock serialises, between test binaries on this host, what must not
// run twice at once: starting libvirtd, building the box, choosing subnets.
func hostLock(clustersDir string) (unlock func(), err error) {
	if err := os.MkdirAll(clustersDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(clustersDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// statStartTick is field 22 (starttime, clock ticks after boot) of a
// /proc/PID/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func statStartTick(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("stat: %d fields after the command name", len(f))
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func processOf(pid int) (process, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return process{}, err
	}
	tick, err := statStartTick(string(data))
	return process{PID: pid, StartTick: tick}, err
}

func (p process) alive() bool {
	now, err := processOf(p.PID)
	return err == nil && now.StartTick == p.StartTick
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports
// (sysconf(_SC_CLK_TCK) without cgo).
const clockTicks = 100

// processStarted is when pid started, from /proc/stat's btime and the
// process's start tick.
func processStarted(pid int) (time.Time, error) {
	p, err := processOf(pid)
	if err != nil {
		return time.Time{}, err
	}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, err
			}
			return time.Unix(boot, 0).Add(time.Duration(p.StartTick) * time.Second / clockTicks), nil
		}
	}
	return time.Time{}, errors.New("/proc/stat: no btime")
}
