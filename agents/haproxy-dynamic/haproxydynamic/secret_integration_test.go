//go:build integration

package haproxydynamic

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// The Consul token of token_file never shows in HAProxy's or the
// watcher's argv or environment, in the agent's output or logs, or in a
// state file others may read.
func TestTokenStaysSecret(t *testing.T) {
	const token = "3c0d9a4e-2b7f-4e61-8d5a-hafw-haproxy-secret"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(t.TempDir(), "ha.log")
	f := newFixture(t, map[string]string{"token_file": tokenFile})
	f.register("web-1", backend(t, "1"), true)
	trace := map[string]string{"HA_LOGFILE": logs, "HA_debug": "1"}
	results := []ocftest.Result{f.run(ocf.ActionStart, trace, ocf.Success)}
	f.await("1", 20*time.Second)
	results = append(results, f.run(ocf.ActionMonitor, deep, ocf.Success))
	watcherLogs, _ := filepath.Glob(filepath.Join(f.dir, "*", "*.log"))
	more, _ := filepath.Glob(filepath.Join(f.dir, "*.log"))
	for _, where := range ocftest.SecretExposures(token, results, append(append(watcherLogs, more...), logs), []string{f.dir}) {
		t.Errorf("the token shows in %s", where)
	}
	if len(watcherLogs)+len(more) == 0 {
		t.Errorf("no log file found under %s: the test would not look at the watcher's log", f.dir)
	}
}
