package haproxyapi

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseServersState(t *testing.T) {
	got, err := ParseServersState(read(t, "show-servers-state.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := []ServerState{
		{Backend: "be_web", Server: "s1", Addr: netip.MustParseAddrPort("127.0.0.1:18090"), OpState: 2, Admin: AdminConfigMaint | AdminForcedDrain},
		{Backend: "be_web", Server: "s2", Addr: netip.MustParseAddrPort("127.0.0.1:18091"), OpState: 2, Admin: AdminConfigMaint},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		s                        ServerState
		maint, draining, serving bool
	}{
		{ServerState{Admin: AdminConfigMaint | AdminForcedMaint}, true, false, false}, // a "disabled" placeholder
		{ServerState{Admin: AdminConfigMaint}, false, false, true},                    // placeholder set ready
		{ServerState{Admin: AdminConfigMaint | AdminForcedDrain}, false, true, false},
		{ServerState{Admin: AdminForcedMaint | AdminForcedDrain}, true, false, false},
	} {
		if tt.s.Maint() != tt.maint || tt.s.Draining() != tt.draining || tt.s.Serving() != tt.serving {
			t.Errorf("admin %#x: maint %v draining %v serving %v, want %v %v %v", tt.s.Admin,
				tt.s.Maint(), tt.s.Draining(), tt.s.Serving(), tt.maint, tt.draining, tt.serving)
		}
	}
}

func TestParseServersStateErrors(t *testing.T) {
	for name, in := range map[string]string{
		"unknown command": "Unknown command. Please enter one of the following commands only :\n",
		"no such backend": "Can't find backend.\n",
		"missing column":  "1\n# be_id be_name srv_name\n3 be s1\n",
		// A column named twice: the line is one field short of the
		// header, and the index of srv_port beyond it.
		"column named twice": "1\n# x be_name x srv_name srv_addr srv_op_state srv_admin_state srv_port\n0 0 0 s1 10.0.0.1 2 0\n",
		"bad address":        strings.Replace(read(t, "show-servers-state.txt"), "127.0.0.1 2 4", "localhost 2 4", 1),
	} {
		if _, err := ParseServersState(in); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseInfoAndSessions(t *testing.T) {
	info := ParseInfo(read(t, "show-info.txt"))
	if info["Pid"] == "" || !strings.HasPrefix(info["Version"], "2.") {
		t.Errorf("ParseInfo: Pid %q Version %q", info["Pid"], info["Version"])
	}
	got, err := ParseSessions(read(t, "show-stat.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"be_web/s1": 0, "be_web/s2": 0}, got); diff != "" {
		t.Errorf("ParseSessions (-want +got):\n%s", diff)
	}
}

// TestClient runs the client against a fake socket that answers like
// HAProxy, to check the refusal detection; the integration test covers
// the real one.
func TestClient(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	answers := map[string]string{
		"set server be/s1 addr 10.0.0.1 port 80": "IP changed from '127.0.0.1' to '10.0.0.1', port changed from '1' to '80' by 'stats socket command'\n",
		"set server be/s9 addr 10.0.0.1 port 80": "No such server.\n",
		"set server be/s2 addr 10.0.0.1 port 80": "no need to change the addr, no need to change the port by 'stats socket command'\n",
		"set server be/s1 state ready":           "\n",
		"set server be/s9 state ready":           "No such server.\n",
		"show servers state be_web":              read(t, "show-servers-state.txt"),
		"show servers state be_none":             "Can't find backend.\n",
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			line, _ := bufioLine(c)
			c.Write([]byte(answers[line]))
			c.Close()
		}
	}()
	c := Client{Socket: sock}
	ctx := context.Background()
	a := netip.MustParseAddrPort("10.0.0.1:80")
	if err := c.SetAddr(ctx, "be", "s1", a); err != nil {
		t.Errorf("SetAddr: %v", err)
	}
	// An instance returning to the slot it had: nothing to change, no error.
	if err := c.SetAddr(ctx, "be", "s2", a); err != nil {
		t.Errorf("SetAddr to the same address: %v", err)
	}
	if err := c.SetAddr(ctx, "be", "s9", a); err == nil || !strings.Contains(err.Error(), "No such server") {
		t.Errorf("SetAddr(s9) = %v, want No such server", err)
	}
	if err := c.SetState(ctx, "be", "s1", "ready"); err != nil {
		t.Errorf("SetState: %v", err)
	}
	if err := c.SetState(ctx, "be", "s9", "ready"); err == nil {
		t.Error("SetState(s9): no error")
	}
	// Read as it arrives, the answer gives what its parse as a whole gives.
	if got, err := c.ServersState(ctx, "be_web"); err != nil || len(got) != 2 || got[0].Server != "s1" || got[1].Addr.Port() != 18091 {
		t.Errorf("ServersState(be_web) = %+v, %v; want s1 and s2 as in testdata", got, err)
	}
	if _, err := c.ServersState(ctx, "be_none"); err == nil || !strings.Contains(err.Error(), "unexpected answer") {
		t.Errorf("ServersState(be_none) = %v, want HAProxy's refusal", err)
	}
	if _, err := c.Do(ctx, "show info; shutdown"); err == nil {
		t.Error("Do accepted a ';'")
	}
	if _, err := (Client{Socket: filepath.Join(t.TempDir(), "none")}).Info(ctx); err == nil {
		t.Error("Info on a missing socket: no error")
	}
}

func bufioLine(c net.Conn) (string, error) {
	var b []byte
	buf := make([]byte, 1)
	for {
		if _, err := c.Read(buf); err != nil {
			return string(b), err
		}
		if buf[0] == '\n' {
			return string(b), nil
		}
		b = append(b, buf[0])
	}
}

func TestFilterServersState(t *testing.T) {
	data, err := os.ReadFile("testdata/show-servers-state.txt")
	if err != nil {
		t.Fatal(err)
	}
	got := FilterServersState(string(data), func(s ServerState) bool { return s.Server == "s2" })
	states, err := ParseServersState(got)
	if err != nil {
		t.Fatalf("filtered state does not parse: %v\n%s", err, got)
	}
	if len(states) != 1 || states[0].Server != "s2" || states[0].Addr.Port() != 18091 {
		t.Errorf("filtered state = %+v, want s2 only", states)
	}
	if !strings.HasPrefix(got, "1\n# be_id ") {
		t.Errorf("filtered state lost its header:\n%s", got)
	}
}
