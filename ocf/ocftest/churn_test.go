package ocftest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ha-framework/ha-framework/ocf"
)

// churners returns n stopped resources of a, each its own instance,
// sharing the state directory dir.
func churners(t *testing.T, a ocf.AnyAgent, dir string, n int) []*Runner {
	var out []*Runner
	for i := range n {
		out = append(out, NewRunner(t, a, Config{Name: "harness", Params: map[string]string{"word": "w"},
			Env: map[string]string{"OCF_RESOURCE_INSTANCE": "churn" + strconv.Itoa(i), "HA_RSCTMP": dir}}))
	}
	return out
}

func TestChurnPasses(t *testing.T) {
	dir := t.TempDir()
	steady := NewRunner(t, agent(), Config{Name: "harness", Params: map[string]string{"word": "w"},
		Env: map[string]string{"OCF_RESOURCE_INSTANCE": "steady", "HA_RSCTMP": dir}})
	if got := steady.Run(ocf.ActionStart, nil); got.Code != ocf.Success {
		t.Fatalf("start of the steady resource: %+v", got)
	}
	if n := Churn(t, steady, churners(t, agent(), dir, 6), 5); n == 0 {
		t.Error("Churn returned 0 monitors of the steady resource")
	}
}

// An agent whose instances share one state file: a probe of one finds the
// others running. Churn must say so.
func TestChurnFindsSharedState(t *testing.T) {
	shared := agent()
	shared.Exclusive = false
	shared.Start = func(ctx context.Context, r *ocf.Request[struct{ Word string }]) error {
		return os.WriteFile(filepath.Join(r.Env.StateDir(), "shared.state"), nil, 0o644)
	}
	shared.Stop = func(ctx context.Context, r *ocf.Request[struct{ Word string }]) error {
		_ = os.Remove(filepath.Join(r.Env.StateDir(), "shared.state"))
		return nil
	}
	shared.Monitor = func(ctx context.Context, r *ocf.Request[struct{ Word string }]) (ocf.State, error) {
		if _, err := os.Stat(filepath.Join(r.Env.StateDir(), "shared.state")); err != nil {
			return ocf.Stopped, nil
		}
		return ocf.Running, nil
	}
	dir := t.TempDir()
	steady := NewRunner(t, shared, Config{Name: "harness", Params: map[string]string{"word": "w"},
		Env: map[string]string{"OCF_RESOURCE_INSTANCE": "steady", "HA_RSCTMP": dir}})
	if got := steady.Run(ocf.ActionStart, nil); got.Code != ocf.Success {
		t.Fatalf("start of the steady resource: %+v", got)
	}
	rec := &recorder{TB: t}
	rec.run(func(tb testing.TB) { Churn(tb, steady, churners(t, shared, dir, 4), 20) })
	all := strings.Join(rec.errors, "\n")
	if !strings.Contains(all, "churn0, cycle 1: probe = OCF_SUCCESS") {
		t.Errorf("Churn reported:\n%s\nwant churn0's first probe found running", all)
	}
}

// Runners set up as NewRunner does by default, each with a state directory
// of its own, hide instances that collide in their state files (the agent
// of TestChurnFindsSharedState passes there), and two runners of one
// instance are one resource: Churn must refuse both setups, saying what to
// set, rather than pass.
func TestChurnRefusesSetupThatHidesCollisions(t *testing.T) {
	dir := t.TempDir()
	runner := func(instance, stateDir string) *Runner {
		env := map[string]string{"OCF_RESOURCE_INSTANCE": instance}
		if stateDir != "" {
			env["HA_RSCTMP"] = stateDir
		}
		return NewRunner(t, agent(), Config{Name: "harness", Params: map[string]string{"word": "w"}, Env: env})
	}
	for _, tt := range []struct {
		name     string
		steady   *Runner
		churning []*Runner
		want     string
	}{
		{"state directories of their own", runner("steady", ""), []*Runner{runner("churn0", ""), runner("churn1", "")},
			`has state directory`},
		{"one directory, one instance twice", runner("steady", dir), []*Runner{runner("churn0", dir), runner("churn0", dir)},
			`two runners are resource "churn0"`},
		{"steady's instance", runner("steady", dir), []*Runner{runner("steady", dir)},
			`two runners are resource "steady"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.steady.Run(ocf.ActionStart, nil); got.Code != ocf.Success {
				t.Fatalf("start of the steady resource: %+v", got)
			}
			t.Cleanup(func() { tt.steady.Run(ocf.ActionStop, nil) })
			rec := &recorder{TB: t}
			var n int
			rec.run(func(tb testing.TB) { n = Churn(tb, tt.steady, tt.churning, 1) })
			all := strings.Join(rec.errors, "\n")
			if n != 0 || !strings.Contains(all, tt.want) || !strings.Contains(all, "HA_RSCTMP") && !strings.Contains(all, "OCF_RESOURCE_INSTANCE") {
				t.Errorf("Churn returned %d and reported:\n%s\nwant 0 and a report with %q naming what to set", n, all, tt.want)
			}
		})
	}
}
