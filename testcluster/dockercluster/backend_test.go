package dockercluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
