package tinyd

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/daemon"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// TestMain runs the companion when the in-process actions start this test
// binary as the daemon (argv: serve CONFIG), as daemon.Companion says.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == Companion.Arg {
		os.Exit(daemon.Main(New(), Companion))
	}
	os.Exit(m.Run())
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

// TestDaemonConformance: ocf/daemon's start, stop, monitor and
// reload-agent pass the harness from outside the repository.
func TestDaemonConformance(t *testing.T) {
	ocftest.Conformance(t, New(), ocftest.Config{Name: "tinyd", Params: map[string]string{"port": freePort(t)}})
}

// TestDaemonReload: reload-agent with a new message makes the running
// daemon serve it, as the deep monitor sees.
func TestDaemonReload(t *testing.T) {
	r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "tinyd", Params: map[string]string{"port": freePort(t), "message": "one"}})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	if got := r.Run(ocf.ActionStart, nil); got.Code != ocf.Success {
		t.Fatalf("start: %+v", got)
	}
	deep := map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000", "OCF_CHECK_LEVEL": "10"}
	if got := r.Run(ocf.ActionMonitor, deep); got.Code != ocf.Success {
		t.Fatalf("deep monitor: %+v", got)
	}
	if got := r.Run(ocf.ActionReloadAgent, map[string]string{"OCF_RESKEY_message": "two"}); got.Code != ocf.Success {
		t.Fatalf("reload-agent: %+v", got)
	}
	deep["OCF_RESKEY_message"] = "two"
	if got := r.Run(ocf.ActionMonitor, deep); got.Code != ocf.Success {
		t.Errorf("deep monitor after reload: %+v", got)
	}
}

// TestDaemonChurn: daemons of several resources, one state directory, as
// on one node.
func TestDaemonChurn(t *testing.T) {
	dir := t.TempDir()
	runner := func(name string) *ocftest.Runner {
		r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "tinyd", Params: map[string]string{"port": freePort(t)},
			Env: map[string]string{"OCF_RESOURCE_INSTANCE": name, "HA_RSCTMP": dir}})
		t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
		return r
	}
	steady := runner("steady")
	if got := steady.Run(ocf.ActionStart, nil); got.Code != ocf.Success {
		t.Fatalf("start: %+v", got)
	}
	if n := ocftest.Churn(t, steady, []*ocftest.Runner{runner("a"), runner("b"), runner("c")}, 3); n == 0 {
		t.Error("steady never monitored")
	}
}

// TestDaemonOCFTester: the real ocf-tester against the built agent, whose
// main runs the companion through daemon.Main.
func TestDaemonOCFTester(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tinyd")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/tinyd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ocftest.OCFTester(t, bin, ocftest.Config{Name: "tinyd", Params: map[string]string{"port": freePort(t)}})
}
