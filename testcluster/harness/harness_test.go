package harness

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recordingBackend has no machines: its nodes answer every command with a
// captured crm_mon output of a ready 3-node cluster (after failing the
// first few, as nodes that are still starting do). It records what the
// harness asks of it, which is what these tests check: the harness's own
// options, not a backend (the e2e scenarios run the real ones).
type recordingBackend struct {
	spec      Spec
	failFirst int // commands that fail before the nodes answer
	calls     int
	destroyed bool
}

func (b *recordingBackend) Kind() string { return "recording" }

func (b *recordingBackend) Create(ctx context.Context, spec Spec) ([]Node, error) {
	b.spec = spec
	var nodes []Node
	for _, n := range []string{"hafw-smoke-n1", "hafw-smoke-n2", "hafw-smoke-n3"}[:spec.Nodes] {
		nodes = append(nodes, Node{Name: n, IP: "192.0.2.1"})
	}
	return nodes, nil
}

func (b *recordingBackend) Command(ctx context.Context, node string, cmd ...string) *exec.Cmd {
	b.calls++
	if b.calls <= b.failFirst {
		return exec.CommandContext(ctx, "false")
	}
	return exec.CommandContext(ctx, "cat", "testdata/crm_mon-3nodes.xml")
}

func (b *recordingBackend) PowerOff(context.Context, string) error { return nil }
func (b *recordingBackend) PowerOn(context.Context, string) error  { return nil }
func (b *recordingBackend) Running(context.Context, string) (bool, time.Time, error) {
	return true, time.Time{}, nil
}
func (b *recordingBackend) CollectLogs(context.Context, string, string) error { return nil }
func (b *recordingBackend) Fencer() (string, []string, error)                 { return "", nil, nil }
func (b *recordingBackend) Destroy(context.Context) error                     { b.destroyed = true; return nil }

// agentsDir is a folder that passes for built agents.
func agentsDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "example"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestUpKeepAndName(t *testing.T) {
	agents := agentsDir(t)
	removed := &recordingBackend{}
	t.Run("default", func(t *testing.T) {
		c := Up(t, removed, &Options{AgentsDir: agents})
		if !strings.HasPrefix(c.Name, "hafw-") || removed.spec.Name != c.Name || removed.spec.Keep {
			t.Errorf("cluster %q, spec %+v: want a hafw-<random> name, not kept", c.Name, removed.spec)
		}
	})
	if !removed.destroyed {
		t.Error("a cluster not kept was not destroyed when its test ended")
	}

	kept := &recordingBackend{}
	t.Run("kept", func(t *testing.T) {
		c := Up(t, kept, &Options{AgentsDir: agents, Name: "hafw-smoke", Keep: true})
		if c.Name != "hafw-smoke" || kept.spec.Name != "hafw-smoke" || !kept.spec.Keep {
			t.Errorf("cluster %q, spec %+v: want hafw-smoke, kept", c.Name, kept.spec)
		}
	})
	if kept.destroyed {
		t.Error("a kept cluster was destroyed when its test ended")
	}
}

func TestWaitingReports(t *testing.T) {
	b := &recordingBackend{failFirst: 2}
	type seen struct {
		what, why string
		since     time.Duration
	}
	var got []seen
	Up(t, b, &Options{AgentsDir: agentsDir(t), Waiting: func(what string, since time.Duration, why string) {
		got = append(got, seen{what, why, since})
	}})
	if len(got) != 2 {
		t.Fatalf("Waiting called %d times, want 2 (one per failed poll): %+v", len(got), got)
	}
	for i, s := range got {
		if s.what != "cluster ready" || !strings.Contains(s.why, "exit status 1") || s.since < 0 {
			t.Errorf("call %d: %+v, want cluster ready with the failed command", i, s)
		}
	}
	if got[1].since < got[0].since {
		t.Errorf("elapsed times go back: %v then %v", got[0].since, got[1].since)
	}
}
