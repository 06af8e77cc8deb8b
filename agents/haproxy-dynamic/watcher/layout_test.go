package watcher

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxyapi"
	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxycfg"
)

func ip(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 80)
}

// slotsOf returns n servers of be_web: the first serving instances ip(1..),
// the rest placeholders in maintenance.
func slotsOf(n, serving int) []haproxyapi.ServerState {
	var out []haproxyapi.ServerState
	for i := 1; i <= n; i++ {
		if i <= serving {
			out = append(out, srv(fmt.Sprintf("s%d", i), ip(i).String(), ready))
		} else {
			out = append(out, srv(fmt.Sprintf("s%d", i), "127.0.0.1:1", placeholder))
		}
	}
	return out
}

func TestLayout(t *testing.T) {
	c := &Config{MaxSlots: 30}
	c.Slots = 10
	tests := []struct {
		name      string
		servers   []haproxyapi.ServerState
		extra     []netip.AddrPort
		wantSlots int
		wantAddrs int
	}{
		{name: "grow by a step", servers: slotsOf(10, 10), extra: []netip.AddrPort{ip(11)}, wantSlots: 20, wantAddrs: 11},
		{name: "grow by steps", servers: slotsOf(10, 10), extra: []netip.AddrPort{ip(11), ip(12), ip(13), ip(14), ip(15), ip(16), ip(17), ip(18), ip(19), ip(20), ip(21)}, wantSlots: 30, wantAddrs: 21},
		{name: "grow stops at max_slots", servers: slotsOf(20, 20), extra: []netip.AddrPort{ip(21), ip(22), ip(23), ip(24), ip(25), ip(26), ip(27), ip(28), ip(29), ip(30), ip(31), ip(32)}, wantSlots: 30, wantAddrs: 30},
		{name: "shrink when far fewer", servers: slotsOf(30, 3), wantSlots: 10, wantAddrs: 3},
		{name: "keep within half a step", servers: slotsOf(20, 15), wantSlots: 20, wantAddrs: 15},
		{name: "steady", servers: slotsOf(10, 4), wantSlots: 10, wantAddrs: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := layout(c, "be_web", tt.servers, tt.extra)
			if be.Slots != tt.wantSlots || len(be.Servers) != tt.wantAddrs {
				t.Fatalf("layout = %d slots, %d servers; want %d, %d", be.Slots, len(be.Servers), tt.wantSlots, tt.wantAddrs)
			}
			seen := map[int]bool{}
			for _, s := range be.Servers {
				if s.Slot < 1 || s.Slot > be.Slots || seen[s.Slot] {
					t.Errorf("server %v in slot %d of %d (or twice)", s.Addr, s.Slot, be.Slots)
				}
				seen[s.Slot] = true
			}
		})
	}
}

// Shrinking moves instances from cut-off slots into low ones, and keeps
// the others where they are.
func TestLayoutShrinkMoves(t *testing.T) {
	c := &Config{}
	c.Slots = 2
	servers := []haproxyapi.ServerState{
		srv("s1", "127.0.0.1:1", placeholder), srv("s2", ip(2).String(), ready),
		srv("s3", "127.0.0.1:1", placeholder), srv("s4", "127.0.0.1:1", placeholder),
		srv("s5", "127.0.0.1:1", placeholder), srv("s6", ip(6).String(), ready),
	}
	got := layout(c, "be_web", servers, nil)
	want := haproxycfg.Backend{Slots: 4, Servers: []haproxycfg.Server{{Slot: 1, Addr: ip(6)}, {Slot: 2, Addr: ip(2)}}}
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("layout (-want +got):\n%s", diff)
	}
}

func TestCapInstances(t *testing.T) {
	servers := []haproxyapi.ServerState{srv("s1", ip(9).String(), ready), srv("s2", ip(8).String(), draining), srv("s3", ip(7).String(), placeholder)}
	want := []netip.AddrPort{ip(1), ip(2), ip(3), ip(7), ip(8), ip(9)}
	got, left := capInstances(want, servers, 3)
	// Placed first (9 serving, 8 draining), then the lowest.
	if diff := cmp.Diff([]netip.AddrPort{ip(1), ip(8), ip(9)}, got, cmpAddr); diff != "" || left != 3 {
		t.Errorf("capInstances left %d, kept (-want +got):\n%s", left, diff)
	}
	if got, left := capInstances(want, servers, 6); len(got) != 6 || left != 0 {
		t.Errorf("capInstances within the cap = %v, %d left out; want all", got, left)
	}
}
