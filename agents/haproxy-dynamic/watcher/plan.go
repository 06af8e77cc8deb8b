package watcher

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxyapi"
)

// op is one runtime API change to a server slot.
type op struct {
	Server string
	// Kind is "fill" (set addr, then ready), "ready", "drain" or "maint".
	Kind string
	Addr netip.AddrPort // for fill
}

// plan compares a backend's servers with the wanted instances and returns
// the changes, and the instances that found no free slot. drains holds
// when each draining server started draining (plan adds and removes
// entries); sessions holds current sessions per server name, nil when
// unknown.
//
// Slots keep their instance as long as it is wanted, so established
// sessions and balancing state are never shuffled; a departed instance is
// drained first and only put in maintenance once idle or after
// drainPeriod.
//
// The changes come in an order that never leaves the backend with fewer
// usable servers than the wanted set offers, even for the instant between
// two runtime commands: servers that come back and new instances first,
// drains last. When the only instance is replaced by another, the new one
// takes traffic before the old one stops taking it.
func plan(servers []haproxyapi.ServerState, want []netip.AddrPort, drains map[string]time.Time,
	sessions map[string]int, now time.Time, drainPeriod time.Duration) (ops []op, overflow []netip.AddrPort) {
	wanted := map[netip.AddrPort]bool{}
	for _, a := range want {
		wanted[a] = true
	}
	covered := map[netip.AddrPort]bool{}
	servers = slices.Clone(servers)
	slices.SortFunc(servers, func(a, b haproxyapi.ServerState) int { return slotNumber(a.Server) - slotNumber(b.Server) })
	var free []string
	var readies, maints, fills, drainOps []op
	// Serving servers first: they keep their instance.
	for _, s := range servers {
		if !s.Serving() {
			continue
		}
		if wanted[s.Addr] && !covered[s.Addr] {
			covered[s.Addr] = true
			continue
		}
		drainOps = append(drainOps, op{Server: s.Server, Kind: "drain"})
		drains[s.Server] = now
	}
	for _, s := range servers {
		switch {
		case s.Draining() && wanted[s.Addr] && !covered[s.Addr]:
			// Came back while draining: serve again, same slot.
			covered[s.Addr] = true
			delete(drains, s.Server)
			readies = append(readies, op{Server: s.Server, Kind: "ready"})
		case s.Draining():
			since, ok := drains[s.Server]
			if !ok {
				// Found draining (a restarted watcher): the period starts now.
				drains[s.Server] = now
				since = now
			}
			if n, known := sessions[s.Server]; (known && n == 0) || now.Sub(since) >= drainPeriod {
				delete(drains, s.Server)
				maints = append(maints, op{Server: s.Server, Kind: "maint"})
				free = append(free, s.Server)
			}
		case s.Maint():
			delete(drains, s.Server)
			free = append(free, s.Server)
		}
	}
	slices.SortFunc(free, func(a, b string) int { return slotNumber(a) - slotNumber(b) })
	for _, a := range want {
		if covered[a] {
			continue
		}
		covered[a] = true
		if len(free) == 0 {
			overflow = append(overflow, a)
			continue
		}
		fills = append(fills, op{Server: free[0], Kind: "fill", Addr: a})
		free = free[1:]
	}
	// A draining server put in maintenance takes no new traffic before
	// or after, so maints may come before the fills that reuse its slot.
	ops = slices.Concat(readies, maints, fills, drainOps)
	return ops, overflow
}

// slotNumber is N of server "sN", 0 for other names.
func slotNumber(name string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(name, "s"))
	if err != nil || !strings.HasPrefix(name, "s") {
		return 0
	}
	return n
}
