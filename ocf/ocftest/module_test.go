package ocftest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestFromAnotherModule builds the agents in testdata/tinyagent as a
// module of its own under t.TempDir(), whose go.mod replaces this
// repository with its checkout, and runs its go test: the harness as a
// third party uses it, ocf-tester and crm_resource included where
// installed, on a plain agent (tiny) and a daemon agent whose daemon is
// its own binary run as a companion (tinyd: HTTP readiness, a deep check,
// reload-agent, Churn). Nothing may be left in the default state
// directory, and no companion may be left running.
func TestFromAnotherModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests a separate module")
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command to build the separate module with")
		}
	}
	_, self, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(self), "..", "..")
	mod := filepath.Join(t.TempDir(), "tinyagent")
	provider := "ocftest-" + randomHex(t)
	copyTree(t, filepath.Join(filepath.Dir(self), "testdata", "tinyagent"), mod, map[string]string{
		`const provider = "tinyco"`: `const provider = "` + provider + `"`,
	})
	goMod := "module example.com/tinyagent\n\ngo 1.26\n\n" +
		"require github.com/ha-framework/ha-framework v0.0.0\n\n" +
		"replace github.com/ha-framework/ha-framework => " + repo + "\n"
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(goMod), 0o644); err != nil {
		t.Fatal(err)
	}
	// The repository's checksums cover every module the agent can need.
	sums, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "go.sum"), sums, 0o644); err != nil {
		t.Fatal(err)
	}

	before := stateFiles(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The go command needs the developer's Go environment (module and
	// build caches), so it inherits this test's; GOPROXY=off keeps it to
	// what the repository's own build already downloaded.
	cmd := exec.CommandContext(ctx, gobin, "test", "-count=1", "-v", "./...")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "CGO_ENABLED=0",
		"PATH="+filepath.Dir(gobin)+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in a separate module: %v\n%s", err, out)
	}
	t.Logf("go test in a separate module:\n%s", out)
	for _, name := range []string{"TestConformance", "TestRunnerStateDir", "TestOCFTester", "TestCrmValidate",
		"TestDaemonConformance", "TestDaemonReload", "TestDaemonChurn", "TestDaemonOCFTester"} {
		if !regexp.MustCompile(`--- (PASS|SKIP): ` + name + ` `).Match(out) {
			t.Errorf("%s did not run", name)
		}
	}
	if os.Geteuid() == 0 && hasTool("ocf-tester") && regexp.MustCompile(`--- SKIP: Test(Daemon)?OCFTester `).Match(out) {
		t.Errorf("an OCFTester test skipped although ocf-tester is installed and this is root")
	}
	if left := companions(t); len(left) > 0 {
		t.Errorf("tinyd companions left running: %v", left)
	}
	if after := stateFiles(t); len(after) > len(before) {
		t.Errorf("files left in %s: before %v, after %v", "/run/resource-agents", before, after)
	}
	if _, err := os.Stat(filepath.Join("/usr/lib/ocf/resource.d", provider)); err == nil {
		t.Errorf("provider directory %s left installed", provider)
	}
}

// stateFiles lists the tiny agents' files in the default state directory.
func stateFiles(t *testing.T) []string {
	t.Helper()
	var all []string
	for _, pattern := range []string{"/run/resource-agents/tiny-*", "/run/resource-agents/tinyd-*"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m...)
	}
	return all
}

// companions lists the processes running tinyd's companion (argv: serve
// .../tinyd-INSTANCE.json), which every test must have stopped.
func companions(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		argv := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if len(argv) == 3 && argv[1] == "serve" && strings.HasPrefix(filepath.Base(argv[2]), "tinyd-") {
			left = append(left, filepath.Base(d)+" "+strings.Join(argv, " "))
		}
	}
	return left
}

func hasTool(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// copyTree copies the regular files under src to dst, applying replace
// to their contents.
func copyTree(t *testing.T, src, dst string, replace map[string]string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		s := string(data)
		for old, repl := range replace {
			s = strings.ReplaceAll(s, old, repl)
		}
		return os.WriteFile(target, []byte(s), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
