//go:build integration

package testcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/agents/consul/consulagent"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// BenchmarkConsulMonitor measures what a recurring monitor of a running
// Consul costs (fork+exec of the installed agent, one HTTP call), side by
// side with /bin/true in the same loop, and reports the ratio: the
// machine's noise falls on both alike.
func BenchmarkConsulMonitor(b *testing.B) {
	params, _ := consulServer(b, "bench", 1, nil)
	state := b.TempDir()
	r := ocftest.NewRunner(b, consulagent.New(), ocftest.Config{Name: "consul", Params: params,
		Env: map[string]string{"HA_RSCTMP": state, "OCF_RESKEY_CRM_meta_timeout": "60000", "OCF_RESOURCE_INSTANCE": "bench"}})
	if got := r.Run("start", nil); got.Code != ocf.Success {
		b.Fatalf("start: %v %q", got.Code, got.Reason)
	}
	b.Cleanup(func() { r.Run("stop", nil) })

	env := []string{"PATH=/usr/bin:/bin", "HA_RSCTMP=" + state, "OCF_RESOURCE_INSTANCE=bench",
		"OCF_RESKEY_CRM_meta_interval=10000", "OCF_RESKEY_CRM_meta_timeout=20000"}
	for k, v := range params {
		env = append(env, "OCF_RESKEY_"+k+"="+v)
	}
	run := func(path string, args ...string) time.Duration {
		cmd := exec.Command(path, args...)
		cmd.Env = env
		began := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s %v: %v", path, args, err)
		}
		return time.Since(began)
	}
	agent := filepath.Join(ocfDir, "consul")
	if _, err := os.Stat(agent); err != nil {
		b.Fatalf("%v (run make install)", err)
	}
	var floor, monitor time.Duration
	b.ResetTimer()
	for b.Loop() {
		floor += run("/bin/true")
		monitor += run(agent, "monitor")
	}
	b.ReportMetric(float64(monitor.Microseconds())/float64(b.N), "µs/monitor")
	b.ReportMetric(float64(floor.Microseconds())/float64(b.N), "µs/true")
	b.ReportMetric(float64(monitor)/float64(floor), "x-true")
}
