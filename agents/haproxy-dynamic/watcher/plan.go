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
	// Serving servers first: they keep their instance.
	for _, s := range servers {
		if !s.Serving() {
			continue
		}
		if wanted[s.Addr] && !covered[s.Addr] {
			covered[s.Addr] = true
			continue
		}
		ops = append(ops, op{Server: s.Server, Kind: "drain"})
		drains[s.Server] = now
	}
	for _, s := range servers {
		switch {
		case s.Draining() && wanted[s.Addr] && !covered[s.Addr]:
			// Came back while draining: serve again, same slot.
			covered[s.Addr] = true
			delete(drains, s.Server)
			ops = append(ops, op{Server: s.Server, Kind: "ready"})
		case s.Draining():
			since, ok := drains[s.Server]
			if !ok {
				// Found draining (a restarted watcher): the period starts now.
				drains[s.Server] = now
				since = now
			}
			if n, known := sessions[s.Server]; (known && n == 0) || now.Sub(since) >= drainPeriod {
				delete(drains, s.Server)
				ops = append(ops, op{Server: s.Server, Kind: "maint"})
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
		ops = append(ops, op{Server: free[0], Kind: "fill", Addr: a})
		free = free[1:]
	}
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
