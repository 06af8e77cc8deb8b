package watcher

import (
	"net"
	"net/netip"
	"time"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/routes"
)

// Filter tells the instances a backend may route to from those it must
// not: HAProxy's own listeners (a route to itself loops until maxconn and
// starves every other route) and addresses that name no single host.
type Filter struct {
	listeners []netip.AddrPort
	// local reports whether an address belongs to this node; a listener
	// on a wildcard address accepts on every one of them. Split takes a
	// new snapshot when the one taken at localAt is a minute old, so an
	// address added to the node later counts too.
	local   func(netip.Addr) bool
	localAt time.Time
}

// NewFilter returns the filter for these routes, with this node's
// addresses as they are now.
func NewFilter(rs []routes.Route) *Filter {
	f := &Filter{local: localAddrs(), localAt: time.Now()}
	for _, r := range rs {
		f.listeners = append(f.listeners, r.Listen)
	}
	return f
}

// Reason says why a must not be routed to, or returns "" when it may.
func (f *Filter) Reason(a netip.AddrPort) string {
	ip := a.Addr().Unmap()
	switch {
	case ip.IsUnspecified():
		return "unspecified address"
	case ip.IsMulticast():
		return "multicast address"
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "broadcast address"
	}
	for _, l := range f.listeners {
		if l.Port() != a.Port() {
			continue
		}
		la := l.Addr().Unmap()
		if ip == la || (la.IsUnspecified() && (ip.IsLoopback() || f.local != nil && f.local(ip))) {
			return "one of this resource's own listeners"
		}
	}
	return ""
}

// Split returns the instances that may be routed, and a description of
// each one that may not. It is not safe for concurrent use.
func (f *Filter) Split(in []netip.AddrPort) (ok []netip.AddrPort, skipped []string) {
	if !f.localAt.IsZero() && time.Since(f.localAt) > time.Minute {
		f.local, f.localAt = localAddrs(), time.Now()
	}
	for _, a := range in {
		if why := f.Reason(a); why != "" {
			skipped = append(skipped, a.String()+": "+why)
			continue
		}
		ok = append(ok, a)
	}
	return ok, skipped
}

// localAddrs snapshots the node's interface addresses. When they cannot
// be listed, only loopback counts as local.
func localAddrs() func(netip.Addr) bool {
	set := map[netip.Addr]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				set[p.Addr().Unmap()] = true
			}
		}
	}
	return func(ip netip.Addr) bool { return ip.IsLoopback() || set[ip] }
}
