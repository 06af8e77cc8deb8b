package tiny

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// provider is unique to the run (the outer test rewrites it), so that
// runs side by side install different agents.
const provider = "tinyco"

var params = map[string]string{"word": "hello"}

func TestConformance(t *testing.T) {
	ocftest.Conformance(t, New(), ocftest.Config{Name: "tiny", Provider: provider, Params: params})
}

// TestRunnerStateDir: the harness chose a state directory of the test,
// says which, and the agent's files land there.
func TestRunnerStateDir(t *testing.T) {
	r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "tiny", Provider: provider, Params: params})
	dir := r.StateDir()
	if dir == "" || dir == ocf.DefaultStateDir || r.Env()["HA_RSCTMP"] != dir {
		t.Fatalf("StateDir() = %q, Env()[HA_RSCTMP] = %q", dir, r.Env()["HA_RSCTMP"])
	}
	if got := r.Env()["OCF_RESOURCE_PROVIDER"]; got != provider {
		t.Errorf("OCF_RESOURCE_PROVIDER = %q, want %q", got, provider)
	}
	if got := r.Run(ocf.ActionStart, nil); got.Code != ocf.Success {
		t.Fatalf("start: %+v", got)
	}
	for _, f := range []string{"tiny-ocftest.state", "tiny-ocftest.lock"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not in the state directory: %v", f, err)
		}
	}
}

// build compiles the agent into a fresh t.TempDir(), a directory only
// root may enter.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tiny")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tiny")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestOCFTester(t *testing.T) {
	ocftest.OCFTester(t, build(t), ocftest.Config{Name: "tiny", Params: params})
}

// TestCrmValidate installs the agent as ocf:tinyco:tiny for the time of
// the test, as a third party's package would.
func TestCrmValidate(t *testing.T) {
	if _, err := exec.LookPath("crm_resource"); err != nil {
		t.Skip("crm_resource not installed (apt-get install pacemaker-cli-utils)")
	}
	if os.Geteuid() != 0 {
		t.Skip("installing an agent under /usr/lib/ocf needs root")
	}
	dir := filepath.Join("/usr/lib/ocf/resource.d", provider)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, err := os.ReadFile(build(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tiny"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	rc, out := ocftest.CrmValidate(t, provider, "tiny", nil)
	if rc != int(ocf.Misconfigured) || !strings.Contains(out, "parameter word is required") {
		t.Errorf("validate without word: rc %d, want 6 naming word:\n%s", rc, out)
	}
	if rc, out := ocftest.CrmValidate(t, provider, "tiny", params); rc != 0 {
		t.Errorf("validate with word: rc %d, want 0:\n%s", rc, out)
	}
}
