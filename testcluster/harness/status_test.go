package harness

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The fixtures are real crm_mon outputs captured from a hafw-node cluster.
func TestParseStatus(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		want  Status
		nodes []string // Ready for these
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
			nodes: []string{"hafw-smoke-n1", "hafw-smoke-n2", "hafw-smoke-n3"},
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
			nodes: []string{"hafw-smoke-n1", "hafw-smoke-n2", "hafw-smoke-n3"},
		},
		{
			// A clone whose start failed: Stopped, not marked failed,
			// the reason only in the failures section.
			name: "failed start of a clone",
			file: "testdata/crm_mon-failed-start.xml",
			want: Status{
				DC: "vm", Quorum: true,
				Nodes:     map[string]NodeState{"vm": {Online: true}},
				Resources: map[string][]string{"lb": nil},
				Roles:     map[string][]string{"lb": {"Stopped"}},
				Failures: []Failure{{Resource: "lb", Op: "start", Node: "vm", ExitCode: 2,
					Reason: "route web cannot listen on 127.0.0.1:18999 on this node: listen tcp 127.0.0.1:18999: bind: address already in use; free the port"}},
			},
			nodes: []string{"vm"},
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
			if ok, why := got.Ready(tt.nodes); !ok {
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

func TestFailuresOf(t *testing.T) {
	s := Status{Failures: []Failure{
		{Resource: "lb", Op: "start", Node: "n1", ExitCode: 1, Reason: "haproxy exited at start"},
		{Resource: "web", Op: "monitor", Node: "n2", ExitCode: 7},
		{Resource: "lb", Op: "monitor", Node: "n3", ExitCode: 1},
	}}
	tests := []struct{ id, want string }{
		{"lb", "lb start on n1: exit 1 (haproxy exited at start); lb monitor on n3: exit 1"},
		{"web", "web monitor on n2: exit 7"},
		{"consul", ""},
	}
	for _, tt := range tests {
		if got := s.FailuresOf(tt.id); got != tt.want {
			t.Errorf("FailuresOf(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

// TestParseStatusRemoteNode: crm_mon lists a pacemaker_remote node (by
// the id of its connection resource) among the nodes, with the
// resources it runs, as it lists a full node.
func TestParseStatusRemoteNode(t *testing.T) {
	data, err := os.ReadFile("testdata/crm_mon-remote.xml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseStatus(data)
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"hafw-smoke-n1", "hafw-smoke-n2", "hafw-smoke-n3", "hafw-smoke-r1"}
	if ok, why := s.Ready(all); !ok {
		t.Errorf("Ready(%v): %s", all, why)
	}
	if got := s.Nodes["hafw-smoke-r1"]; got != (NodeState{Online: true}) {
		t.Errorf("remote node state %+v, want online", got)
	}
	for id, want := range map[string][]string{
		"hafw-smoke-r1": {"hafw-smoke-n1"}, // the connection runs on a full node
		"consul-client": {"hafw-smoke-r1"},
		"web":           {"hafw-smoke-r1"},
		"lb":            {"hafw-smoke-n1", "hafw-smoke-n3", "hafw-smoke-n2", "hafw-smoke-r1"},
		"prom":          {"hafw-smoke-n1", "hafw-smoke-n3", "hafw-smoke-n2", "hafw-smoke-r1"},
	} {
		if diff := cmp.Diff(want, s.Resources[id]); diff != "" {
			t.Errorf("Resources[%s] (-want +got):\n%s", id, diff)
		}
	}
	if diff := cmp.Diff([]string{"Unpromoted", "Unpromoted", "Unpromoted", "Promoted"}, s.Roles["prom"]); diff != "" {
		t.Errorf("Roles[prom] (-want +got):\n%s", diff)
	}
}
