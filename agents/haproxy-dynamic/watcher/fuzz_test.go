package watcher

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/routes"
)

// FuzzParseHealth feeds arbitrary health answers through everything the
// watcher does with one: parse, extract addresses, filter. The parse,
// which decodes as the answer arrives, must agree with a decode of the
// whole answer at once (parseHealthWhole). It must never
// panic, only routable unicast addresses with a port may come out, and a
// skipped entry's description must hold no control characters (it goes
// into logs and the status file).
func FuzzParseHealth(f *testing.F) {
	if data, err := os.ReadFile("testdata/health-service.json"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		`[{"Node": null, "Service": {"ID": "x", "Port": 80}}]`,
		`[{"Node": {"Address": "10.0.0.1"}, "Service": null}]`,
		`[null]`, `null`, `[]`, `{}`, `[42]`, `[1,]`, `[] []`, `null x`, ` [ ] `, `[{"Node": {}, "Service": {"Port": "80"}}]`,
		`[{"Node": {}, "Service": {"Address": "127.0.0.1", "Port": 8081}}]`,
		`[{"Node": {}, "Service": {"Address": "fe80::1%eth0", "Port": 80}}]`,
		`[{"Node": {}, "Service": {"Address": "0.0.0.0", "Port": 80}}]`,
		`[{"Node": {}, "Service": {"ID": "\u001b[2J", "Address": "::ffff:1.2.3.4", "Port": -1}}]`,
	} {
		f.Add([]byte(s))
	}
	filter := NewFilter([]routes.Route{{Service: "web", Listen: netip.MustParseAddrPort("127.0.0.1:8081")}})
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, skipped, err := ParseHealth(data)
		wantEntries, wantSkipped, wantErr := parseHealthWhole(data)
		if (err == nil) != (wantErr == nil) || !slices.Equal(entries, wantEntries) || !slices.Equal(skipped, wantSkipped) {
			t.Fatalf("streaming parse = %v, %q, %v; parse of the whole answer = %v, %q, %v",
				entries, skipped, err, wantEntries, wantSkipped, wantErr)
		}
		if err != nil {
			if entries != nil || skipped != nil {
				t.Fatal("an error with entries")
			}
			return
		}
		addrs, bad := Addrs(entries)
		ok, refused := filter.Split(addrs)
		for _, a := range ok {
			ip := a.Addr()
			if a.Port() == 0 || !ip.IsValid() || ip.Zone() != "" || ip.Is4In6() || ip.IsUnspecified() || ip.IsMulticast() ||
				a == netip.MustParseAddrPort("127.0.0.1:8081") {
				t.Fatalf("unroutable %v accepted", a)
			}
		}
		if len(ok)+len(refused) > len(entries) {
			t.Fatalf("%d instances out of %d entries", len(ok)+len(refused), len(entries))
		}
		for _, s := range append(append(skipped, bad...), refused...) {
			if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				t.Fatalf("skipped description %q holds control characters", s)
			}
		}
	})
}

// parseHealthWhole is ParseHealth as it was before it decoded answers as
// they arrive: json.Unmarshal of the whole answer, then of each entry.
func parseHealthWhole(data []byte) (entries []Entry, skipped []string, err error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, nil, fmt.Errorf("health answer is not a JSON array: %v", err)
	}
	for i, r := range raw {
		var e healthEntry
		if err := json.Unmarshal(r, &e); err != nil {
			skipped = append(skipped, fmt.Sprintf("entry %d: malformed: %v", i, err))
			continue
		}
		if e.Node == nil || e.Service == nil {
			skipped = append(skipped, fmt.Sprintf("entry %d: no Node or no Service", i))
			continue
		}
		addr := e.Service.Address
		if addr == "" {
			addr = e.Node.Address
		}
		entries = append(entries, Entry{ID: e.Service.ID, Addr: addr, Port: e.Service.Port})
	}
	return entries, skipped, nil
}
