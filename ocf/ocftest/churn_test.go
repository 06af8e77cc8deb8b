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
