package ocftest

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf/process"
)

// PcsSchema is where pcs keeps the schema it enforces.
const PcsSchema = "/usr/share/pcs/data/ocf-1.1.rng"

// KnownDTDFailure is the one ocf-tester check no OCF 1.1 agent can pass:
// ocf-tester validates meta-data against the OCF 1.0 DTD, which knows none
// of 1.1's elements. Pacemaker's own 1.1 agents fail it too.
const KnownDTDFailure = "does not conform to ra-api-1.dtd"

// OCFTester runs resource-agents' ocf-tester, as root, against the agent
// binary at path (built anywhere, t.TempDir() included), and fails the
// test on every failed check but KnownDTDFailure. The resource is stopped
// afterwards, since ocf-tester may end with it running. It skips, saying
// why, without ocf-tester or root.
//
// ocf-tester runs meta-data as the user nobody, who cannot enter the 0700
// directories t.TempDir() makes: the binary is copied to a directory of
// its own, mode 0755, under os.TempDir(). When nobody cannot reach that
// either (a TMPDIR inside a private directory), the test fails and says
// so. Actions other than meta-data run as root with HA_RSCTMP set to a
// fresh directory of the test, unless cfg.Env sets it.
func OCFTester(t testing.TB, path string, cfg Config) {
	t.Helper()
	tester, err := exec.LookPath("ocf-tester")
	if err != nil {
		t.Skip("ocf-tester not installed (apt-get install resource-agents)")
	}
	if os.Geteuid() != 0 {
		t.Skip("ocf-tester needs root")
	}
	agent := copyForNobody(t, path, cfg.Name)
	env := environment(t, cfg)
	// ocf-tester sets the instance itself, from -n.
	instance := "ocftest-" + cfg.Name
	delete(env, "OCF_RESOURCE_INSTANCE")
	args := []string{"-v", "-n", instance}
	for _, k := range sortedKeys(cfg.Params) {
		args = append(args, "-o", k+"="+cfg.Params[k])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := combined(ctx, env, tester, append(args, agent)...)
	if err != nil && !errors.As(err, new(*process.ExitError)) {
		t.Fatalf("ocf-tester: %v", err)
	}
	for _, f := range TesterFailures(out) {
		if !strings.Contains(f, KnownDTDFailure) {
			t.Errorf("ocf-tester: %s", f)
		}
	}
	if t.Failed() || !strings.Contains(out, "Tests failed") && !strings.Contains(out, "passed all tests") {
		t.Errorf("ocf-tester output:\n%s", out)
	}
	env["OCF_RESOURCE_INSTANCE"] = instance
	if out, err := combined(ctx, env, agent, "stop"); err != nil {
		t.Errorf("stop after ocf-tester: %v\n%s", err, out)
	}
}

// copyForNobody copies the executable at path into a new directory that
// every user can enter, and returns the copy's path. The directory is
// removed when the test ends.
func copyForNobody(t testing.TB, path, name string) string {
	t.Helper()
	src, err := os.Open(path)
	if err != nil {
		t.Fatalf("agent binary: %v", err)
	}
	defer src.Close()
	dir, err := os.MkdirTemp("", "ocftest-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if blocked := untraversable(dir); blocked != "" {
		t.Fatalf("ocf-tester runs meta-data as user nobody, who cannot enter %s (no search permission for others); "+
			"set TMPDIR to a directory every user can reach, such as /tmp", blocked)
	}
	if name == "" {
		name = filepath.Base(path)
	}
	dst := filepath.Join(dir, name)
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// untraversable returns the first directory on the way to dir (dir
// included) that others may not search, or "" when there is none.
func untraversable(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return d
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}

var failureLine = regexp.MustCompile(`^\* (rc=-?\d+: .*|Your agent partially supports promotable clones)$`)

// TesterFailures returns ocf-tester's failed checks from its output.
func TesterFailures(out string) []string {
	var failures []string
	for _, line := range strings.Split(out, "\n") {
		if failureLine.MatchString(strings.TrimSpace(line)) {
			failures = append(failures, strings.TrimSpace(line))
		}
	}
	if strings.Contains(out, "Aborting tests") {
		failures = append(failures, "aborted")
	}
	return failures
}

// CrmValidate runs Pacemaker's crm_resource --validate for the installed
// agent ocf:PROVIDER:NAME with params, and returns its exit code and
// combined output. Installed means an executable at
// /usr/lib/ocf/resource.d/PROVIDER/NAME: crm_resource looks for OCF agents
// only in the directories Pacemaker was built with, whatever OCF_ROOT or
// OCF_RA_PATH say, so a test installs the agent there (as root, under a
// provider of its own) and removes it afterwards. An agent it does not
// find gives exit code 64 (CRM_EX_USAGE, "not a known resource"). The
// agent runs with HA_RSCTMP set to a fresh directory of the test. It skips
// without crm_resource, and fails the test when crm_resource cannot be run
// at all.
func CrmValidate(t testing.TB, provider, name string, params map[string]string) (int, string) {
	t.Helper()
	crm, err := exec.LookPath("crm_resource")
	if err != nil {
		t.Skip("crm_resource not installed (apt-get install pacemaker-cli-utils)")
	}
	args := []string{"--validate", "--class", "ocf", "--provider", provider, "--agent", name}
	for _, k := range sortedKeys(params) {
		args = append(args, "--option", k+"="+params[k])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// crm_resource hands its own environment to the agent it runs.
	out, err := combined(ctx, map[string]string{"HA_RSCTMP": t.TempDir()}, crm, args...)
	var ee *process.ExitError
	if errors.As(err, &ee) && ee.Status >= 0 {
		return ee.Status, out
	}
	if err != nil {
		t.Fatalf("crm_resource: %v\n%s", err, out)
	}
	return 0, out
}

// combined runs path with args through process.Run, with env added to
// its environment (through env(1): Run passes none of the test's own),
// and returns stdout and stderr interleaved as the command wrote them.
func combined(ctx context.Context, env map[string]string, path string, args ...string) (string, error) {
	argv := []string{"-c", `exec "$@" 2>&1`, "sh", "/usr/bin/env"}
	argv = append(argv, envList(env)...)
	argv = append(argv, path)
	out, err := process.Run(ctx, "/bin/sh", append(argv, args...)...)
	var ee *process.ExitError
	if errors.As(err, &ee) {
		// Report the tool, not the shell that ran it.
		ee.Path, ee.Args = path, args
	}
	return string(out), err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func envList(m map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, k+"="+m[k])
	}
	return out
}
