package haproxyapi

import (
	"bufio"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzAppendFields checks the servers-state line splitter against
// strings.Fields, which it stands in for.
func FuzzAppendFields(f *testing.F) {
	for _, s := range []string{"", " ", "3 be_web 1 s1 127.0.0.1 2 0 1 1 9 1 0 0 0 0 0 0 - 8081 -",
		"a\tb  c\r\n", "\u00a0x\u0085y ", "x\v\fy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		got := appendFields([]string{"kept"}, line)
		want := append([]string{"kept"}, strings.Fields(line)...)
		if !slices.Equal(got, want) {
			t.Errorf("appendFields(%q) = %q, want %q", line, got, want)
		}
	})
}

// FuzzReadServersState checks the parse of "show servers state" as it is
// read (what the watcher uses each second) against the parse of the
// whole answer: the same servers, or an error from both.
func FuzzReadServersState(f *testing.F) {
	if data, err := os.ReadFile("testdata/show-servers-state.txt"); err == nil {
		f.Add(string(data))
	}
	for _, s := range []string{"", "\n\n1\n# be_name srv_name srv_addr srv_port srv_op_state srv_admin_state\nbe s1 10.0.0.1 80 2 0\n\n",
		"1\n# be_name srv_name srv_addr srv_port srv_op_state srv_admin_state\nbe s1 10.0.0.1 80 2",
		"Unknown command.\n", "1\n# be_id be_name srv_name\n3 be s1\n", "1"} {
		f.Add(s)
	}
	cmpAddr := cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })
	f.Fuzz(func(t *testing.T, out string) {
		want, wantErr := ParseServersState(out)
		got, err := readServersState(bufio.NewReaderSize(strings.NewReader(out), 16))
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("read as it arrives: %v; whole: %v", err, wantErr)
		}
		if diff := cmp.Diff(want, got, cmpAddr, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("read as it arrives (-whole +read):\n%s", diff)
		}
	})
}
