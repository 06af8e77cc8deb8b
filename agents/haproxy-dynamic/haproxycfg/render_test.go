package haproxycfg

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/routes"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func settings(t *testing.T, spec string) Settings {
	t.Helper()
	rs, err := routes.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return Settings{Routes: rs, Socket: "/run/hd/admin.sock", StateFile: "/run/hd/server-state", Retries: 3,
		Slots: 3, HardStopAfter: 30 * time.Second, TimeoutConnect: 5 * time.Second, TimeoutIdle: 5 * time.Minute}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name     string
		spec     string
		backends map[string]Backend
	}{
		{"empty-slots", "web=127.0.0.1:8081/http,db=127.0.0.1:5433/tcp/leastconn", nil},
		{"filled", "web=8081/http/check,db=[::1]:5433/check", map[string]Backend{
			"web": {Servers: []Server{{1, netip.MustParseAddrPort("127.0.0.1:9001")}, {3, netip.MustParseAddrPort("127.0.0.2:9002")}}},
			"db":  {Slots: 5, Servers: []Server{{4, netip.MustParseAddrPort("[::1]:6000")}}},
		}},
		{"grown", "web=8081/http", map[string]Backend{
			"web": {Servers: []Server{{5, netip.MustParseAddrPort("127.0.0.1:9005")}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Render(settings(t, tt.spec), tt.backends)
			golden := filepath.Join("testdata", tt.name+".cfg")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("Render (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRenderedConfigIsValid runs the real haproxy -c on rendered files.
func TestRenderedConfigIsValid(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not installed (apt-get install haproxy): rendered configuration not checked by haproxy -c")
	}
	dir := t.TempDir()
	for _, spec := range []string{
		"web=127.0.0.1:8081/http,db=127.0.0.1:5433/tcp/leastconn",
		"web=8081/http/check/first,db=[::1]:5433/check/source,r=0.0.0.0:5434/random/http,s=5435/static-rr",
	} {
		s := settings(t, spec)
		s.Socket, s.StateFile = filepath.Join(dir, "admin.sock"), filepath.Join(dir, "state")
		path := filepath.Join(dir, "haproxy.cfg")
		cfg := Render(s, map[string]Backend{"web": {Servers: []Server{{2, netip.MustParseAddrPort("127.0.0.1:9")}}}})
		if err := os.WriteFile(path, cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Validate(context.Background(), haproxy, path); err != nil {
			t.Errorf("%s: %v\n%s", spec, err, cfg)
		}
	}
	bad := filepath.Join(dir, "bad.cfg")
	if err := os.WriteFile(bad, []byte("backend b\n\tbalance nosuchalgo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = Validate(context.Background(), haproxy, bad)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "balance only supports") {
		t.Errorf("Validate(bad) = %v, want one line naming the bad algorithm", err)
	}
}

// BenchmarkValidate measures HAProxy's configuration check of one backend
// of n filled slots: what each reload costs, and why max_slots exists.
func BenchmarkValidate(b *testing.B) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		b.Skip("haproxy not installed (apt-get install haproxy)")
	}
	for _, n := range []int{100, 1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			rs, err := routes.Parse("web=127.0.0.1:8081/http/check")
			if err != nil {
				b.Fatal(err)
			}
			dir := b.TempDir()
			s := Settings{Routes: rs, Socket: filepath.Join(dir, "admin.sock"), StateFile: filepath.Join(dir, "state"), Retries: 3,
				Slots: n, HardStopAfter: time.Second, TimeoutConnect: time.Second, TimeoutIdle: time.Minute}
			be := Backend{}
			for i := 1; i <= n; i++ {
				be.Servers = append(be.Servers, Server{Slot: i, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 80)})
			}
			path := filepath.Join(dir, "haproxy.cfg")
			if err := os.WriteFile(path, Render(s, map[string]Backend{"web": be}), 0o600); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := Validate(context.Background(), haproxy, path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
