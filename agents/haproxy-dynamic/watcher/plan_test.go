package watcher

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxyapi"
)

const (
	placeholder = haproxyapi.AdminConfigMaint | haproxyapi.AdminForcedMaint
	ready       = haproxyapi.AdminConfigMaint
	draining    = haproxyapi.AdminConfigMaint | haproxyapi.AdminForcedDrain
)

func srv(name, addr string, admin int) haproxyapi.ServerState {
	return haproxyapi.ServerState{Backend: "be_web", Server: name, Addr: netip.MustParseAddrPort(addr), Admin: admin}
}

func addrs(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range s {
		out = append(out, netip.MustParseAddrPort(a))
	}
	return out
}

func TestPlan(t *testing.T) {
	now := time.Unix(1000, 0)
	a, b, c := "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"
	tests := []struct {
		name         string
		servers      []haproxyapi.ServerState
		want         []netip.AddrPort
		drains       map[string]time.Time
		sessions     map[string]int
		wantOps      []op
		wantOverflow []netip.AddrPort
	}{
		{name: "fill empty slots in order",
			servers: []haproxyapi.ServerState{srv("s2", "127.0.0.1:1", placeholder), srv("s1", "127.0.0.1:1", placeholder)},
			want:    addrs(a, b),
			wantOps: []op{{"s1", "fill", addrs(a)[0]}, {"s2", "fill", addrs(b)[0]}}},
		{name: "nothing to do",
			servers: []haproxyapi.ServerState{srv("s1", a, ready), srv("s2", "127.0.0.1:1", placeholder)},
			want:    addrs(a)},
		{name: "only instance replaced: the new one fills before the old one drains",
			servers: []haproxyapi.ServerState{srv("s1", a, ready), srv("s2", "127.0.0.1:1", placeholder)},
			want:    addrs(b),
			wantOps: []op{{"s2", "fill", addrs(b)[0]}, {"s1", "drain", netip.AddrPort{}}}},
		{name: "whole set replaced: fills and returns before drains, maintenance before the fill of its slot",
			servers: []haproxyapi.ServerState{srv("s1", a, ready), srv("s2", b, draining), srv("s3", "10.0.0.9:80", draining)},
			drains:  map[string]time.Time{"s2": now, "s3": now.Add(-time.Minute)},
			want:    addrs(b, c),
			wantOps: []op{{"s2", "ready", netip.AddrPort{}}, {"s3", "maint", netip.AddrPort{}}, {"s3", "fill", addrs(c)[0]}, {"s1", "drain", netip.AddrPort{}}}},
		{name: "draining and busy stays until the period ends",
			servers:  []haproxyapi.ServerState{srv("s1", a, draining)},
			drains:   map[string]time.Time{"s1": now.Add(-time.Second)},
			sessions: map[string]int{"s1": 3}},
		{name: "draining and idle goes to maintenance",
			servers:  []haproxyapi.ServerState{srv("s1", a, draining)},
			drains:   map[string]time.Time{"s1": now.Add(-time.Second)},
			sessions: map[string]int{"s1": 0},
			wantOps:  []op{{"s1", "maint", netip.AddrPort{}}}},
		{name: "drain period over",
			servers:  []haproxyapi.ServerState{srv("s1", a, draining)},
			drains:   map[string]time.Time{"s1": now.Add(-time.Minute)},
			sessions: map[string]int{"s1": 3},
			wantOps:  []op{{"s1", "maint", netip.AddrPort{}}}},
		{name: "draining instance comes back",
			servers: []haproxyapi.ServerState{srv("s1", a, draining), srv("s2", "127.0.0.1:1", placeholder)},
			drains:  map[string]time.Time{"s1": now},
			want:    addrs(a),
			wantOps: []op{{"s1", "ready", netip.AddrPort{}}}},
		{name: "duplicate slot drains",
			servers: []haproxyapi.ServerState{srv("s1", a, ready), srv("s2", a, ready)},
			want:    addrs(a),
			wantOps: []op{{"s2", "drain", netip.AddrPort{}}}},
		{name: "more instances than slots",
			servers:      []haproxyapi.ServerState{srv("s1", a, ready), srv("s2", "127.0.0.1:1", placeholder)},
			want:         addrs(a, b, c),
			wantOps:      []op{{"s2", "fill", addrs(b)[0]}},
			wantOverflow: addrs(c)},
		{name: "empty set from Consul drains everything",
			servers: []haproxyapi.ServerState{srv("s1", a, ready)},
			wantOps: []op{{"s1", "drain", netip.AddrPort{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drains := tt.drains
			if drains == nil {
				drains = map[string]time.Time{}
			}
			ops, overflow := plan(tt.servers, tt.want, drains, tt.sessions, now, 5*time.Second)
			cmpAddr := cmp.Comparer(func(x, y netip.AddrPort) bool { return x == y })
			if diff := cmp.Diff(tt.wantOps, ops, cmpAddr); diff != "" {
				t.Errorf("ops (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantOverflow, overflow, cmpAddr); diff != "" {
				t.Errorf("overflow (-want +got):\n%s", diff)
			}
		})
	}
}

// inSync lets the tick skip a backend only when plan would change
// nothing and no reload would follow.
func TestInSync(t *testing.T) {
	a, b, c := "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"
	free := srv("s9", "127.0.0.1:1", placeholder)
	tests := []struct {
		name    string
		servers []haproxyapi.ServerState
		want    []netip.AddrPort
		leftOut int
		in      bool
	}{
		{name: "serves exactly the wanted", servers: []haproxyapi.ServerState{srv("s1", a, ready), srv("s2", b, ready), free}, want: addrs(a, b), in: true},
		{name: "nothing wanted, nothing served", servers: []haproxyapi.ServerState{free}, in: true},
		{name: "a wanted instance missing", servers: []haproxyapi.ServerState{srv("s1", a, ready), free}, want: addrs(a, b)},
		{name: "an unwanted instance served", servers: []haproxyapi.ServerState{srv("s1", a, ready), srv("s2", c, ready)}, want: addrs(a)},
		{name: "one instance in two slots, another missing", servers: []haproxyapi.ServerState{srv("s1", a, ready), srv("s2", a, ready)}, want: addrs(a, b)},
		{name: "one instance in two slots", servers: []haproxyapi.ServerState{srv("s1", a, ready), srv("s2", a, ready)}, want: addrs(a)},
		{name: "a server draining", servers: []haproxyapi.ServerState{srv("s1", a, ready), srv("s2", c, draining)}, want: addrs(a)},
		{name: "a wanted instance in maintenance", servers: []haproxyapi.ServerState{srv("s1", a, placeholder)}, want: addrs(a)},
		{name: "instances left out", servers: []haproxyapi.ServerState{srv("s1", a, ready)}, want: addrs(a), leftOut: 1},
		{name: "slots to give back", servers: []haproxyapi.ServerState{srv("s1", a, ready), free, free, free, free, free}, want: addrs(a)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWatcher(&Config{}, nil)
			w.cfg.Slots = 2
			w.want["web"] = tt.want
			w.status.Routes["web"] = RouteStatus{LeftOut: tt.leftOut}
			if got := w.inSync("web", tt.servers); got != tt.in {
				t.Fatalf("inSync = %v, want %v", got, tt.in)
			}
			if !tt.in {
				return
			}
			ops, overflow := plan(tt.servers, tt.want, map[string]time.Time{}, nil, time.Now(), time.Second)
			if len(ops) > 0 || len(overflow) > 0 || len(tt.servers) > shrunk(w.cfg, len(tt.want)) {
				t.Errorf("in sync, but plan = %v, overflow %v (%d slots)", ops, overflow, len(tt.servers))
			}
		})
	}
}
