package exampleagent

import (
	"os"
	"strings"
	"testing"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

func TestConformance(t *testing.T) {
	ocftest.Conformance(t, New(), ocftest.Config{Name: "example", Params: map[string]string{"label": "conformance"}})
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		action string
		want   ocf.Code
		reason string
	}{
		{"missing label", map[string]string{}, "validate-all", ocf.Misconfigured, "parameter label is required"},
		{"missing label on start", map[string]string{}, "start", ocf.Misconfigured, "pcs resource update ocftest label=VALUE"},
		{"relative state file", map[string]string{"label": "x", "state": "rel/x"}, "start", ocf.Misconfigured, `state="rel/x" is invalid: must be an absolute path`},
		{"bad delay", map[string]string{"label": "x", "delay": "-3"}, "validate-all", ocf.Misconfigured, `delay="-3" is invalid`},
		{"score out of range", map[string]string{"label": "x", "promotion_score": "-1"}, "validate-all", ocf.Misconfigured, "must be from 0 to 1000000"},
		{"delay longer than the timeout", map[string]string{"label": "x", "delay": "5s"}, "start", ocf.GenericFailure, "exceeds the operation timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// strings.Contains(reason, "") holds for any reason: a row
			// must say what its reason names.
			if tt.reason == "" {
				t.Fatal("row names no text its exit reason must contain")
			}
			r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "example", Params: tt.params,
				Env: map[string]string{"OCF_RESKEY_CRM_meta_timeout": "2000"}})
			got := r.Run(tt.action, nil)
			if got.Code != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("%s = %v %q, want %v with %q", tt.action, got.Code, got.Reason, tt.want, tt.reason)
			}
		})
	}
}

func TestReloadKeepsRoleAndAppliesMessage(t *testing.T) {
	state := t.TempDir() + "/s"
	r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "example", Params: map[string]string{"label": "x", "state": state}})
	for _, step := range []struct {
		action string
		extra  map[string]string
	}{{"start", nil}, {"promote", nil}, {"reload-agent", map[string]string{"OCF_RESKEY_message": "new"}}} {
		if got := r.Run(step.action, step.extra); got.Code != ocf.Success {
			t.Fatalf("%s: %+v", step.action, got)
		}
	}
	data, _ := os.ReadFile(state)
	if string(data) != "x\nnew\npromoted\n" {
		t.Errorf("state file = %q", data)
	}
	if got := r.Run("monitor", map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"}); got.Code != ocf.RunningPromoted {
		t.Errorf("monitor = %v", got.Code)
	}
}

func TestDeepMonitorChecksLabel(t *testing.T) {
	state := t.TempDir() + "/s"
	r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "example", Params: map[string]string{"label": "x", "state": state}})
	if got := r.Run("start", nil); got.Code != ocf.Success {
		t.Fatal(got)
	}
	deep := map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000", "OCF_CHECK_LEVEL": "10", "OCF_RESKEY_label": "other"}
	if got := r.Run("monitor", deep); got.Code != ocf.GenericFailure || !strings.Contains(got.Reason, `holds label "x", want "other"`) {
		t.Errorf("deep monitor = %+v", got)
	}
	deep["OCF_CHECK_LEVEL"] = "0"
	if got := r.Run("monitor", deep); got.Code != ocf.Success {
		t.Errorf("shallow monitor = %+v", got)
	}
}

// Several resources of the example on one node, started and stopped at
// once beside a steady one: each keeps to its own state file.
func TestChurn(t *testing.T) {
	dir := t.TempDir()
	runner := func(name string) *ocftest.Runner {
		return ocftest.NewRunner(t, New(), ocftest.Config{Name: "example", Params: map[string]string{"label": name},
			Env: map[string]string{"OCF_RESOURCE_INSTANCE": name, "HA_RSCTMP": dir}})
	}
	steady := runner("steady")
	if got := steady.Run("start", nil); got.Code != ocf.Success {
		t.Fatalf("start: %+v", got)
	}
	var churning []*ocftest.Runner
	for _, name := range []string{"a", "b", "c", "d"} {
		churning = append(churning, runner(name))
	}
	ocftest.Churn(t, steady, churning, 10)
}
