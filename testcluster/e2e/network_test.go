package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// networkOf is the network of the interface holding ip, from the output
// of `ip -4 -o addr show` ("2: eth0    inet 10.0.0.11/24 brd ...").
func networkOf(ipAddr, ip string) (netip.Prefix, error) {
	want, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, line := range strings.Split(ipAddr, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "inet" {
				continue
			}
			p, err := netip.ParsePrefix(f[i+1])
			if err == nil && p.Addr() == want {
				return p.Masked(), nil
			}
		}
	}
	return netip.Prefix{}, fmt.Errorf("no interface has address %s", ip)
}

func TestNetworkOf(t *testing.T) {
	// As a Docker node and a VM (management and cluster network) print it.
	const docker = `1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
358: eth0    inet 172.20.0.11/16 brd 172.20.255.255 scope global eth0\       valid_lft forever preferred_lft forever
`
	const vm = `1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
2: ens5    inet 192.168.121.57/24 metric 1024 brd 192.168.121.255 scope global dynamic ens5\       valid_lft 3563sec preferred_lft 3563sec
3: ens6    inet 192.168.131.11/24 brd 192.168.131.255 scope global ens6\       valid_lft forever preferred_lft forever
`
	for _, tt := range []struct {
		out, ip, want string
	}{
		{docker, "172.20.0.11", "172.20.0.0/16"},
		{vm, "192.168.131.11", "192.168.131.0/24"},
		{vm, "192.168.121.57", "192.168.121.0/24"},
	} {
		got, err := networkOf(tt.out, tt.ip)
		if err != nil || got.String() != tt.want {
			t.Errorf("networkOf(%s) = %v, %v; want %s", tt.ip, got, err, tt.want)
		}
	}
	if _, err := networkOf(vm, "10.0.0.1"); err == nil {
		t.Error("no error for an address no interface has")
	}
}
