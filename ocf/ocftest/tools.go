package ocftest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// KnownDTDFailure is the one ocf-tester check no OCF 1.1 agent can pass:
// ocf-tester validates meta-data against the OCF 1.0 DTD, which knows none
// of 1.1's elements. Pacemaker's own 1.1 agents fail it too.
const KnownDTDFailure = "does not conform to ra-api-1.dtd"

// OCFTester runs resource-agents' ocf-tester against the agent installed
// at path, as root, and fails the test on every failed check but
// KnownDTDFailure. It skips, saying why, without ocf-tester or root.
func OCFTester(t testing.TB, path string, cfg Config) {
	t.Helper()
	tester, err := exec.LookPath("ocf-tester")
	if err != nil {
		t.Skip("ocf-tester not installed (apt-get install resource-agents)")
	}
	if os.Geteuid() != 0 {
		t.Skip("ocf-tester needs root")
	}
	args := []string{"-v", "-n", "ocftest-" + cfg.Name}
	for _, k := range sortedKeys(cfg.Params) {
		args = append(args, "-o", k+"="+cfg.Params[k])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tester, append(args, path)...)
	cmd.Env = append(os.Environ(), envList(cfg.Env)...)
	out, _ := cmd.CombinedOutput()
	failures := TesterFailures(string(out))
	for _, f := range failures {
		if !strings.Contains(f, KnownDTDFailure) {
			t.Errorf("ocf-tester: %s", f)
		}
	}
	if t.Failed() || !strings.Contains(string(out), "Tests failed") && !strings.Contains(string(out), "passed all tests") {
		t.Errorf("ocf-tester output:\n%s", out)
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
// agent ocf:ha-framework:NAME with params, and returns its exit code and
// combined output. It skips without crm_resource.
func CrmValidate(t testing.TB, name string, params map[string]string) (int, string) {
	t.Helper()
	crm, err := exec.LookPath("crm_resource")
	if err != nil {
		t.Skip("crm_resource not installed (apt-get install pacemaker-cli-utils)")
	}
	args := []string{"--validate", "--class", "ocf", "--provider", "ha-framework", "--agent", name}
	for _, k := range sortedKeys(params) {
		args = append(args, "--option", k+"="+params[k])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, crm, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("crm_resource: %v", err)
	}
	return 0, string(out)
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
		out = append(out, fmt.Sprintf("%s=%s", k, m[k]))
	}
	return out
}
