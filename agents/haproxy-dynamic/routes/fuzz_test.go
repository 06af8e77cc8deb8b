package routes

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParseRoutes checks that whatever Parse accepts is safe to render
// into an HAProxy configuration (names and options from the allowed sets,
// no two routes on one port) and reads back the same from its String form.
func FuzzParseRoutes(f *testing.F) {
	for _, s := range []string{
		"web=127.0.0.1:8081/http,db=127.0.0.1:5433/tcp",
		"db=5433/check/leastconn", "v6=[::1]:9000/http/random", "a=0.0.0.0:80,b=80", "x=", "=", "a=1/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := Parse(s)
		if err != nil {
			if rs != nil && err.Error() == "" {
				t.Fatal("an error without a reason")
			}
			return
		}
		var again []string
		for _, r := range rs {
			if validName(r.Service) != nil || strings.ContainsAny(r.Service, " \t\n#\"'\\") {
				t.Fatalf("unsafe service name %q accepted", r.Service)
			}
			if !slices.Contains(Modes, r.Mode) || !slices.Contains(Algorithms, r.Balance) {
				t.Fatalf("route %+v has a mode or algorithm outside the allowed sets", r)
			}
			if r.Listen.Port() == 0 || !r.Listen.Addr().IsValid() {
				t.Fatalf("route %+v has no usable listen address", r)
			}
			again = append(again, r.String())
		}
		rs2, err := Parse(strings.Join(again, ","))
		if err != nil {
			t.Fatalf("String form %q does not parse: %v", again, err)
		}
		if !slices.Equal(rs, rs2) {
			t.Fatalf("round trip changed routes: %+v != %+v", rs, rs2)
		}
	})
}
