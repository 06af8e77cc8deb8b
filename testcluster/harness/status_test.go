package harness

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The fixtures are real crm_mon outputs captured from a hafw-node cluster.
func TestParseStatus(t *testing.T) {
	tests := []struct {
		name string
		file string
		want Status
	}{
		{
			name: "three nodes, no resource",
			file: "testdata/crm_mon-3nodes.xml",
			want: Status{
				DC: "hafw-smoke-n1", Quorum: true,
				Nodes: map[string]NodeState{
					"hafw-smoke-n1": {Online: true}, "hafw-smoke-n2": {Online: true}, "hafw-smoke-n3": {Online: true},
				},
				Resources: map[string][]string{}, Roles: map[string][]string{},
			},
		},
		{
			name: "one started resource",
			file: "testdata/crm_mon-resource.xml",
			want: Status{
				DC: "hafw-smoke-n1", Quorum: true,
				Nodes: map[string]NodeState{
					"hafw-smoke-n1": {Online: true}, "hafw-smoke-n2": {Online: true}, "hafw-smoke-n3": {Online: true},
				},
				Resources: map[string][]string{"ex": {"hafw-smoke-n1"}},
				Roles:     map[string][]string{"ex": {"Started"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseStatus(data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseStatus (-want +got):\n%s", diff)
			}
			if ok, why := got.Ready([]string{"hafw-smoke-n1", "hafw-smoke-n2", "hafw-smoke-n3"}); !ok {
				t.Errorf("Ready: %s", why)
			}
		})
	}
}

func TestParseStatusRejectsGarbage(t *testing.T) {
	if _, err := ParseStatus([]byte("<other/>")); err == nil {
		t.Error("no error for XML without pacemaker-result")
	}
}
