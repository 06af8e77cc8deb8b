package routes

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Route
	}{
		{"port only", "web=8081", []Route{{Service: "web", Listen: ap("127.0.0.1:8081"), Mode: "tcp", Balance: "roundrobin"}}},
		{"two routes", "web=127.0.0.1:8081/http,db=127.0.0.1:5433/tcp", []Route{
			{Service: "web", Listen: ap("127.0.0.1:8081"), Mode: "http", Balance: "roundrobin"},
			{Service: "db", Listen: ap("127.0.0.1:5433"), Mode: "tcp", Balance: "roundrobin"},
		}},
		{"options in any order", "db=5433/check/leastconn/tcp", []Route{{Service: "db", Listen: ap("127.0.0.1:5433"), Mode: "tcp", Balance: "leastconn", Check: true}}},
		{"white space separated", " a=1\n b=2 ", []Route{
			{Service: "a", Listen: ap("127.0.0.1:1"), Mode: "tcp", Balance: "roundrobin"},
			{Service: "b", Listen: ap("127.0.0.1:2"), Mode: "tcp", Balance: "roundrobin"},
		}},
		{"ipv6", "v6=[::1]:9000/http", []Route{{Service: "v6", Listen: ap("[::1]:9000"), Mode: "http", Balance: "roundrobin"}}},
		{"same port on two addresses", "a=127.0.0.1:80,b=127.0.0.2:80", []Route{
			{Service: "a", Listen: ap("127.0.0.1:80"), Mode: "tcp", Balance: "roundrobin"},
			{Service: "b", Listen: ap("127.0.0.2:80"), Mode: "tcp", Balance: "roundrobin"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in, wantErr string }{
		{"empty", " , ", "no routes"},
		{"no equals", "web", "expected NAME=[ADDR:]PORT"},
		{"bad port", "web=99999", "is not PORT"},
		{"port zero", "web=0", "port 0"},
		{"hostname", "web=localhost:80", "is not PORT"},
		{"zone", "web=[fe80::1%eth0]:80", "is not PORT"},
		{"unknown balance", "web=80/roundrobbin", `unknown option "roundrobbin"`},
		{"two modes", "web=80/tcp/http", "mode given twice"},
		{"two algorithms", "web=80/first/source", "balance algorithm given twice"},
		{"space splits an entry", "we b=80", `route "we"`},
		{"name with slash", "a/b=80", "only letters"},
		{"empty name", "=80", "empty"},
		{"long name", strings.Repeat("a", 64) + "=80", "longer than 63"},
		{"duplicate service", "a=80,a=81", "routed twice"},
		{"port collision", "a=80,b=127.0.0.1:80", "both listen on 127.0.0.1:80"},
		{"wildcard collision", "a=0.0.0.0:80,b=80", "both listen on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse(%q) = %v, want an error containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestParseFile(t *testing.T) {
	got, err := ParseFile([]byte(`{"routes": [
		{"service": "web", "listen": "127.0.0.1:8081", "mode": "http", "balance": "leastconn", "check_path": "/health", "tag": "v2"},
		{"service": "db", "listen": "5433"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{
		{Service: "web", Listen: ap("127.0.0.1:8081"), Mode: "http", Balance: "leastconn", Check: true, CheckPath: "/health", Tag: "v2"},
		{Service: "db", Listen: ap("127.0.0.1:5433"), Mode: "tcp", Balance: "roundrobin"},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseFileErrors(t *testing.T) {
	tests := []struct{ name, in, wantErr string }{
		{"not json", `web=80`, "not a routes file"},
		{"unknown key", `{"routes":[{"service":"a","listen":"80","weight":3}]}`, "unknown field"},
		{"no routes", `{"routes":[]}`, "no routes"},
		{"trailing", `{"routes":[{"service":"a","listen":"80"}]} {}`, "trailing data"},
		{"bad mode", `{"routes":[{"service":"a","listen":"80","mode":"udp"}]}`, `mode "udp"`},
		{"bad balance", `{"routes":[{"service":"a","listen":"80","balance":"uri"}]}`, `unknown balance algorithm "uri"`},
		{"check path in tcp", `{"routes":[{"service":"a","listen":"80","check_path":"/h"}]}`, "needs mode http"},
		{"check path with space", `{"routes":[{"service":"a","listen":"80","mode":"http","check_path":"/a b"}]}`, "must start with /"},
		{"bad tag", `{"routes":[{"service":"a","listen":"80","tag":"a b"}]}`, "tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFile([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseFile(%s) = %v, want an error containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}
