package vagrantcluster

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func TestFreeSubnets(t *testing.T) {
	candidates := prefixes(t, "192.168.130.0/24", "192.168.131.0/24", "192.168.132.0/24", "192.168.133.0/24")
	for _, tc := range []struct {
		name string
		used []netip.Prefix
		want []netip.Prefix
	}{
		{"nothing used", nil, prefixes(t, "192.168.130.0/24", "192.168.131.0/24")},
		{"a route inside one", prefixes(t, "192.168.130.7/32"), prefixes(t, "192.168.131.0/24", "192.168.132.0/24")},
		{"a wider route over two", prefixes(t, "192.168.130.0/23"), prefixes(t, "192.168.132.0/24", "192.168.133.0/24")},
		{"another cluster's", prefixes(t, "192.168.131.0/24", "192.168.133.0/24"), prefixes(t, "192.168.130.0/24", "192.168.132.0/24")},
		{"unrelated", prefixes(t, "172.17.0.0/16", "192.0.2.0/24"), prefixes(t, "192.168.130.0/24", "192.168.131.0/24")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := freeSubnets(candidates, tc.used, 2)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := freeSubnets(candidates, prefixes(t, "192.168.128.0/21"), 1); err == nil {
		t.Error("all taken: no error")
	}
}

// TestTwoClustersDoNotCollide reserves the subnets of two clusters as
// Create does (the first one's are "used" for the second) and compares
// every name and subnet they would create.
func TestTwoClustersDoNotCollide(t *testing.T) {
	host := prefixes(t, "192.168.56.0/24", "192.168.121.0/24", "192.168.130.0/24")
	first, err := freeSubnets(subnetCandidates(), host, 2)
	if err != nil {
		t.Fatal(err)
	}
	second, err := freeSubnets(subnetCandidates(), append(host, first...), 2)
	if err != nil {
		t.Fatal(err)
	}
	a := newState("hafw-aaaaaa", 3, [2]netip.Prefix{first[0], first[1]}, "/s/clusters/hafw-aaaaaa")
	b := newState("hafw-bbbbbb", 3, [2]netip.Prefix{second[0], second[1]}, "/s/clusters/hafw-bbbbbb")
	names := func(s *clusterState) []string {
		n := []string{s.ClusterNet, s.MgmtNet}
		for _, node := range s.Nodes {
			n = append(n, s.domain(node), s.consoleLog(node))
		}
		return n
	}
	seen := map[string]string{}
	for _, s := range []*clusterState{a, b} {
		for _, n := range names(s) {
			if other, ok := seen[n]; ok {
				t.Errorf("%s used by %s and %s", n, other, s.Name)
			}
			seen[n] = s.Name
		}
	}
	subnets := []netip.Prefix{a.ClusterSubnet, a.MgmtSubnet, b.ClusterSubnet, b.MgmtSubnet}
	for i, p := range subnets {
		for _, h := range host {
			if p.Overlaps(h) {
				t.Errorf("%s overlaps the host's %s", p, h)
			}
		}
		for _, q := range subnets[i+1:] {
			if p.Overlaps(q) {
				t.Errorf("%s overlaps %s", p, q)
			}
		}
	}
	if got := a.domain("node2"); got != "hafw-aaaaaa-node2" {
		t.Errorf("domain = %s", got)
	}
	if got := nodeIP(a.ClusterSubnet, 3).String(); got != "192.168.131.13" {
		t.Errorf("nodeIP = %s", got)
	}
	if got := threeOctets(a.ClusterSubnet); got != "192.168.131" {
		t.Errorf("threeOctets = %s", got)
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := newState("hafw-123abc", 2, [2]netip.Prefix{netip.MustParsePrefix("192.168.140.0/24"), netip.MustParsePrefix("192.168.141.0/24")}, dir)
	s.Env = map[string]string{"HAFW_NODES": "2"}
	s.Owner = process{PID: 42, StartTick: 7}
	if err := s.save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseRoutes(t *testing.T) {
	out := `default via 192.0.2.1 dev eth0
172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1 linkdown
192.168.131.0/24 dev virbr1 proto kernel scope link src 192.168.131.1
local 192.0.2.2 dev eth0 table local proto kernel scope host src 192.0.2.2
broadcast 172.17.255.255 dev docker0 table local proto kernel scope link src 172.17.0.1
unreachable 10.9.0.0/16 proto static
`
	got := parseRoutes(out)
	want := prefixes(t, "172.17.0.0/16", "192.168.131.0/24", "192.0.2.2/32", "172.17.255.255/32", "10.9.0.0/16")
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseNetXML(t *testing.T) {
	for _, tc := range []struct{ name, xml, want string }{
		{"netmask", `<network><name>x</name><bridge name='virbr1'/><ip address='192.168.131.1' netmask='255.255.255.0'></ip></network>`, "192.168.131.1/24"},
		{"prefix", `<network><ip family='ipv4' address='10.1.0.1' prefix='16'/><ip family='ipv6' address='fd00::1' prefix='64'/></network>`, "10.1.0.1/16"},
		{"none", `<network><name>bridged</name></network>`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := parseNetXML([]byte(tc.xml))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("got %q, want %q", g, tc.want)
			}
		})
	}
}

func TestStatStartTick(t *testing.T) {
	stat := "4242 (qemu (a) b) S 1 4242 4242 0 -1 4194560 9000 0 0 0 10 20 0 0 20 0 3 0 123456 1000000 200 18446744073709551615"
	got, err := statStartTick(stat)
	if err != nil || got != 123456 {
		t.Errorf("statStartTick = %d, %v; want 123456", got, err)
	}
	if _, err := statStartTick("1 (x) S 1"); err == nil {
		t.Error("short line: no error")
	}
	self, err := processOf(os.Getpid())
	if err != nil || !self.alive() {
		t.Errorf("this process: %+v alive=%v err=%v", self, self.alive(), err)
	}
	if (process{PID: self.PID, StartTick: self.StartTick + 1}).alive() {
		t.Error("a reused pid counts as alive")
	}
	started, err := processStarted(os.Getpid())
	if err != nil || time.Since(started) > time.Hour || time.Since(started) < -2*time.Second {
		t.Errorf("processStarted = %v, %v", started, err)
	}
}

func TestFenceServerConfig(t *testing.T) {
	subnet := netip.MustParsePrefix("192.168.131.0/24")
	listen := netip.MustParseAddrPort("192.168.131.1:40222")
	cfg := sshdConfig("/s/c/fence", listen, subnet)
	for _, want := range []string{"ListenAddress 192.168.131.1:40222\n", "AllowUsers root@192.168.131.0/24\n",
		"PasswordAuthentication no\n", "AuthorizedKeysFile /s/c/fence/authorized_keys\n", "AllowTcpForwarding no\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("sshd_config lacks %q:\n%s", want, cfg)
		}
	}
	if got, want := authorizedKey("ssh-ed25519 AAAAkey c\n", subnet), "from=\"192.168.131.0/24\",restrict,pty ssh-ed25519 AAAAkey c\n"; got != want {
		t.Errorf("authorizedKey = %q, want %q", got, want)
	}
	if got, want := knownHost(listen, "ssh-ed25519 AAAAhost hafw-x-host_key\n"), "[192.168.131.1]:40222 ssh-ed25519 AAAAhost\n"; got != want {
		t.Errorf("knownHost = %q, want %q", got, want)
	}
}
