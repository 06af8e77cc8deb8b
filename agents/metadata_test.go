package agents

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

var update = flag.Bool("update", false, "rewrite metadata/*.xml from the agents")

// TestMetadataGolden keeps metadata/NAME.xml equal to what each agent
// prints; `go test ./agents -update` rewrites them after a deliberate change.
func TestMetadataGolden(t *testing.T) {
	for _, s := range All() {
		t.Run(s.Name, func(t *testing.T) {
			r := ocftest.NewRunner(t, s.Agent, ocftest.Config{Name: s.Name})
			got := r.Run("meta-data", nil)
			if got.Code != 0 {
				t.Fatalf("meta-data returned %v", got.Code)
			}
			golden := filepath.Join("..", "metadata", s.Name+".xml")
			if *update {
				if err := os.WriteFile(golden, []byte(got.Stdout), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run: make metadata)", err)
			}
			if diff := cmp.Diff(string(want), got.Stdout); diff != "" {
				t.Errorf("%s is stale; run make metadata (-want +got):\n%s", golden, diff)
			}
			ocftest.ValidateMetadata(t, want)
		})
	}
}

func TestMetadataMatchesAgentList(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "metadata", "*.xml"))
	names := map[string]bool{}
	for _, s := range All() {
		names[s.Name+".xml"] = true
	}
	for _, f := range files {
		if !names[filepath.Base(f)] {
			t.Errorf("%s belongs to no shipped agent", f)
		}
	}
}
