package dockercluster

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ha-framework/ha-framework/testcluster/harness"
)

func TestCapsNotBounded(t *testing.T) {
	// 0x1fffeffffff: every capability up to 40 except 24 (CAP_SYS_RESOURCE),
	// the bounding set of the machine where --privileged fails.
	got := capsNotIn(0x000001fffeffffff)
	if diff := cmp.Diff([]string{"SYS_RESOURCE"}, got); diff != "" {
		t.Errorf("capsNotIn (-want +got):\n%s", diff)
	}
}

func TestAgentMounts(t *testing.T) {
	dir := t.TempDir()
	deb := filepath.Join(dir, "ha-framework_1.0_amd64.deb")
	if err := os.WriteFile(deb, []byte("!<arch>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, deb string
		want           []string
		reason         string // the error must contain it
	}{
		{"package wins", "/bin-dir", deb, []string{"-v", deb + ":" + nodeDeb + ":ro"}, ""},
		{"binaries", "/bin-dir", "", []string{"-v", "/bin-dir:/hafw/bin:ro"}, ""},
		{"nothing", "", "", nil, ""},
		{"missing package", "/bin-dir", filepath.Join(dir, "none.deb"), nil, "HAFW_NODE_DEB="},
		{"not a package", "", dir, nil, "not a .deb file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := agentMounts(tc.dir, tc.deb)
			if tc.reason != "" {
				if err == nil || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("err = %v, want one containing %q", err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("agentMounts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOwnDir(t *testing.T) {
	tmp := os.TempDir()
	for _, tt := range []struct {
		dir  string
		want bool
	}{
		{filepath.Join(tmp, "hafw-demo-123456"), true},
		{filepath.Join(tmp, "hafw-demo-"), true},
		{"", false},
		{tmp, false},
		{filepath.Join(tmp, "hafw-demox"), false},               // another name
		{filepath.Join(tmp, "hafw-other-123"), false},           // another cluster
		{filepath.Join(tmp, "hafw-demo-1", "sub"), false},       // below it
		{filepath.Join(tmp, "hafw-demo-1", "..", "etc"), false}, // out of it
		{"/etc/hafw-demo-1", false},                             // not a temporary folder
		{"hafw-demo-1", false},                                  // relative
		{filepath.Join(tmp, "..", "hafw-demo-1"), false},        // above the temporary folder
	} {
		if got := ownDir(tt.dir, "hafw-demo"); got != tt.want {
			t.Errorf("ownDir(%q) = %v, want %v", tt.dir, got, tt.want)
		}
	}
}

func TestNodeAt(t *testing.T) {
	b := &Backend{name: "hafw-abc", subnet: netip.MustParsePrefix("172.20.0.0/16")}
	for i, want := range map[int]harness.Node{
		1: {Name: "hafw-abc-n1", IP: "172.20.0.11"},
		4: {Name: "hafw-abc-n4", IP: "172.20.0.14"}, // a node added to a 3-node cluster
	} {
		if got := b.nodeAt(i); got != want {
			t.Errorf("nodeAt(%d) = %+v, want %+v", i, got, want)
		}
	}
}

func TestAddNodeBeforeCreate(t *testing.T) {
	_, err := New("img").AddNode(context.Background())
	if err == nil || !strings.Contains(err.Error(), "before Create") {
		t.Errorf("AddNode on a backend without a cluster: %v, want an error naming Create", err)
	}
}
