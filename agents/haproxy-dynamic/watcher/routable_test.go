package watcher

import (
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/routes"
)

func TestFilter(t *testing.T) {
	rs := []routes.Route{
		{Service: "web", Listen: netip.MustParseAddrPort("127.0.0.1:8081")},
		{Service: "db", Listen: netip.MustParseAddrPort("0.0.0.0:5433")},
		{Service: "v6", Listen: netip.MustParseAddrPort("[::1]:9000")},
	}
	f := &Filter{local: func(ip netip.Addr) bool { return ip.IsLoopback() || ip == netip.MustParseAddr("192.0.2.7") }}
	for _, r := range rs {
		f.listeners = append(f.listeners, r.Listen)
	}
	tests := []struct {
		addr, want string // want: a substring of the reason, "" for routable
	}{
		{"10.0.0.1:8081", ""},
		{"127.0.0.1:8081", "own listeners"},
		{"127.0.0.2:8081", ""}, // HAProxy listens on 127.0.0.1 only
		{"127.0.0.1:8082", ""},
		{"127.0.0.5:5433", "own listeners"}, // 0.0.0.0 accepts on all loopback
		{"192.0.2.7:5433", "own listeners"}, // and on the node's addresses
		{"192.0.2.8:5433", ""},              // another host
		{"[::1]:9000", "own listeners"},
		{"[::ffff:127.0.0.1]:8081", "own listeners"},
		{"0.0.0.0:80", "unspecified"},
		{"[::]:80", "unspecified"},
		{"224.0.0.1:80", "multicast"},
		{"[ff02::1]:80", "multicast"},
		{"255.255.255.255:80", "broadcast"},
	}
	for _, tt := range tests {
		got := f.Reason(netip.MustParseAddrPort(tt.addr))
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("Reason(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// An instance registered at the route's own listen address is never
// routed; the status says so, for the monitor.
func TestRecordSkipsOwnListener(t *testing.T) {
	c := &Config{}
	c.Routes = []routes.Route{{Service: "web", Listen: netip.MustParseAddrPort("127.0.0.1:8081")}}
	w := newWatcher(c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.record(update{service: "web", index: 3, instances: addrs("10.0.0.1:80", "127.0.0.1:8081", "224.0.0.1:80"),
		skipped: []string{"entry 4: no Node or no Service"}})
	if got := w.want["web"]; len(got) != 1 || got[0] != netip.MustParseAddrPort("10.0.0.1:80") {
		t.Errorf("routed %v, want only 10.0.0.1:80", got)
	}
	rs := w.status.Routes["web"]
	if rs.SkippedCount != 3 || len(rs.Skipped) != 3 || !strings.Contains(rs.Skipped[1], "127.0.0.1:8081: one of this resource's own listeners") {
		t.Errorf("status skipped %d %q, want 3 with the own listener named", rs.SkippedCount, rs.Skipped)
	}
	p := w.status.Problems()
	if !strings.Contains(p, "web: not routed: entry 4: no Node or no Service and 2 more") {
		t.Errorf("Problems() = %q, want the skipped entries", p)
	}
}

func TestProblems(t *testing.T) {
	st := Status{Routes: map[string]RouteStatus{
		"web": {LeftOut: 4000},
		"db":  {SkippedCount: 1, Skipped: []string{"127.0.0.1:5433: one of this resource's own listeners"}},
		"ok":  {Passing: 3},
	}}
	want := "db: not routed: 127.0.0.1:5433: one of this resource's own listeners; web: 4000 passing instances left out beyond max_slots"
	if got := st.Problems(); got != want {
		t.Errorf("Problems() = %q, want %q", got, want)
	}
	if got := (&Status{Routes: map[string]RouteStatus{"ok": {Passing: 3}}}).Problems(); got != "" {
		t.Errorf("Problems() = %q with everything routed, want \"\"", got)
	}
}

// A huge catalog lists a bounded number of instances in the status.
func TestRecordBoundsStatus(t *testing.T) {
	c := &Config{MaxSlots: 20}
	w := newWatcher(c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var many []netip.AddrPort
	var bad []string
	for i := range 5000 {
		many = append(many, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 80))
		bad = append(bad, "entry: no Node or no Service")
	}
	w.record(update{service: "web", index: 1, instances: many, skipped: bad})
	rs := w.status.Routes["web"]
	if len(rs.Instances) != 20 || rs.Passing != 5000 || len(rs.Skipped) != maxListed || rs.SkippedCount != 5000 {
		t.Errorf("status lists %d instances (passing %d), %d skipped (count %d); want 20, 5000, %d, 5000",
			len(rs.Instances), rs.Passing, len(rs.Skipped), rs.SkippedCount, maxListed)
	}
}
