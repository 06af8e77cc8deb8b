package vagrantcluster

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ha-framework/ha-framework/testcluster/harness"
)

// TestCreateRefusesWhatItCannotBuild: what the VMs cannot have is refused
// by Create before anything is made, naming it and the backend that has it.
func TestCreateRefusesWhatItCannotBuild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("Create refuses non-root callers first")
	}
	for _, tt := range []struct {
		name string
		spec harness.Spec
		want string
	}{
		{"docker engine", harness.Spec{Name: "hafw-refuse", Nodes: 3, Docker: true}, "no Docker Engine"},
		{"remote nodes", harness.Spec{Name: "hafw-refuse", Nodes: 3, RemoteNodes: 1}, "no pacemaker_remote nodes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := New(Options{StateDir: t.TempDir(), Dir: t.TempDir()})
			nodes, err := b.Create(context.Background(), tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "docker backend") {
				t.Errorf("Create = %v, want an error naming %q and the docker backend", err, tt.want)
			}
			if len(nodes) != 0 {
				t.Errorf("Create made nodes %v", nodes)
			}
		})
	}
}
