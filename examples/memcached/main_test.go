package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

func needMemcached(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("memcached"); err != nil {
		t.Skip("memcached not installed (apt-get install memcached; make deps installs it)")
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func TestConformance(t *testing.T) {
	needMemcached(t)
	ocftest.Conformance(t, New(), ocftest.Config{Name: "memcached", Params: map[string]string{"port": freePort(t), "memory": "16"}})
}

func TestDeepMonitorAndFailFast(t *testing.T) {
	needMemcached(t)
	port := freePort(t)
	r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "memcached", Params: map[string]string{"port": port}})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	if got := r.Run(ocf.ActionStart, nil); got.Code != ocf.Success {
		t.Fatalf("start = %v %q", got.Code, got.Reason)
	}
	if got := r.Run(ocf.ActionMonitor, map[string]string{"OCF_RESKEY_CRM_meta_interval": "60000", "OCF_CHECK_LEVEL": "10"}); got.Code != ocf.Success {
		t.Errorf("deep monitor = %v %q", got.Code, got.Reason)
	}
	// A second instance on the same port: memcached exits at once, and
	// so does the start, quoting it.
	other := ocftest.NewRunner(t, New(), ocftest.Config{Name: "memcached", Params: map[string]string{"port": port}})
	t.Cleanup(func() { other.Run(ocf.ActionStop, nil) })
	got := other.Run(ocf.ActionStart, map[string]string{"OCF_RESKEY_CRM_meta_timeout": "300000"})
	t.Logf("second start: %v %q", got.Code, got.Reason)
	if got.Code != ocf.GenericFailure || !strings.HasPrefix(got.Reason, "memcached exited at start: ") {
		t.Errorf("start on a taken port = %v %q, want a failure quoting memcached", got.Code, got.Reason)
	}
}

func TestBadInput(t *testing.T) {
	for _, tt := range []struct {
		name   string
		params map[string]string
		want   ocf.Code
		reason string
	}{
		{"pid file option", map[string]string{"options": "-t 4 -P /run/x.pid"}, ocf.Misconfigured, "options: remove -P"},
		{"listen not an address", map[string]string{"listen": "localhost"}, ocf.Misconfigured, `parameter listen="localhost" is invalid`},
		{"memory zero", map[string]string{"memory": "0"}, ocf.Misconfigured, "parameter memory"},
		{"binary missing", map[string]string{"binary": "/nonexistent/memcached"}, ocf.NotInstalled, "set parameter binary"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "memcached", Params: tt.params})
			got := r.Run(ocf.ActionValidateAll, nil)
			if got.Code != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("validate-all = %v %q, want %v with %q", got.Code, got.Reason, tt.want, tt.reason)
			}
			if stop := r.Run(ocf.ActionStop, nil); stop.Code != ocf.Success {
				t.Errorf("stop = %v %q", stop.Code, stop.Reason)
			}
		})
	}
}

// TestOCFTester runs resource-agents' ocf-tester on the built agent.
func TestOCFTester(t *testing.T) {
	needMemcached(t)
	if testing.Short() {
		t.Skip("builds the agent")
	}
	// Built anywhere: OCFTester copies it where ocf-tester's user nobody
	// can run meta-data.
	bin := filepath.Join(t.TempDir(), "memcached")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ocftest.OCFTester(t, bin, ocftest.Config{Name: "memcached", Params: map[string]string{"port": freePort(t), "memory": "16"}})
}

// Several memcached resources on one node started and stopped at once,
// beside a steady one: each stop ends its own daemon only.
func TestChurn(t *testing.T) {
	needMemcached(t)
	dir := t.TempDir()
	runner := func(name string) *ocftest.Runner {
		r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "memcached", Params: map[string]string{"port": freePort(t), "memory": "16"},
			Env: map[string]string{"OCF_RESOURCE_INSTANCE": name, "HA_RSCTMP": dir}})
		t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
		return r
	}
	steady := runner("steady")
	if got := steady.Run(ocf.ActionStart, nil); got.Code != ocf.Success {
		t.Fatalf("start = %v %q", got.Code, got.Reason)
	}
	var churning []*ocftest.Runner
	for _, name := range []string{"a", "b", "c", "d"} {
		churning = append(churning, runner(name))
	}
	ocftest.Churn(t, steady, churning, 3)
}
