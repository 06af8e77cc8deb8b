// Package ocftest checks that an agent behaves as Pacemaker expects. An
// agent's own go test calls Conformance, which runs the ocf-tester
// sequence in-process with OCF 1.1 awareness, and Churn, which runs
// several resources of the agent through their life at once beside a
// steady one. Where the tools are
// installed, OCFTester runs the real ocf-tester against a built binary,
// and CrmValidate runs crm_resource --validate against an installed
// agent. Runner.Interrupt (or Interrupted, which fails the test when the
// kill did not happen) kills an action partway, as pacemaker-execd kills
// one at its timeout, running the agent as a process of its own
// (NewExecRunner, or NewSelfRunner with ServeAgent for the test binary),
// and Recover checks what Pacemaker runs next. It works from any module:
// nothing in it assumes this repository's layout or provider name.
//
// Every Runner (and every Conformance and OCFTester call) gets its own
// state directory (HA_RSCTMP) and HA_VARLIB under the test's temporary
// directory, so lock, state, log and trace_ra files never reach
// /run/resource-agents or /var/lib/heartbeat and vanish with the test.
// Runners that stand for resources of one node, as Churn's do, share one
// state directory: set HA_RSCTMP in their Config.Env.
package ocftest

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// schema is the official OCF 1.1 meta-data schema (RELAX NG).
//
//go:embed schema/ra-api.rng
var schema []byte

// Config is how to run the agent under test.
type Config struct {
	// Name is the agent's name (OCF_RESOURCE_TYPE).
	Name string
	// Params are the instance parameters (ocf-tester's -o name=value).
	Params map[string]string
	// Env adds or overrides variables, such as HA_RSCTMP and HA_VARLIB
	// (by default a fresh t.TempDir() each), OCF_RESOURCE_INSTANCE (by
	// default "ocftest"),
	// OCF_RESKEY_CRM_meta_timeout (by default 20000, in milliseconds) and
	// OCF_RESOURCE_PROVIDER (by default Provider).
	Env map[string]string
	// Provider is the agent's provider, as in ocf:PROVIDER:NAME (default
	// "ocftest").
	Provider string
}

// defaultProvider names the provider when Config leaves it out; it is
// nobody's real one, so that nothing can mistake a test for a
// deployment.
const defaultProvider = "ocftest"

// Result is one invocation's outcome.
type Result struct {
	Code   ocf.Code
	Reason string // the last exit reason on stderr
	Stdout string
	Stderr string
}

// Runner runs actions of one agent under one configuration, in-process
// (NewRunner) or as a process of its own (NewExecRunner, NewSelfRunner).
type Runner struct {
	agent ocf.AnyAgent
	env   map[string]string
	// path is the agent's executable when actions run as processes;
	// self says it is the test binary, serving through ServeAgent.
	path string
	self bool
}

// NewRunner prepares in-process invocations of a with cfg.
func NewRunner(t testing.TB, a ocf.AnyAgent, cfg Config) *Runner {
	t.Helper()
	return &Runner{agent: a, env: environment(t, cfg)}
}

// environment is what every harness run gives the agent: the variables
// Pacemaker sets, the instance parameters, then cfg.Env on top.
func environment(t testing.TB, cfg Config) map[string]string {
	t.Helper()
	provider := cfg.Provider
	if provider == "" {
		provider = defaultProvider
	}
	env := map[string]string{
		"OCF_ROOT":                    "/usr/lib/ocf",
		"OCF_RA_VERSION_MAJOR":        "1",
		"OCF_RA_VERSION_MINOR":        "1",
		"OCF_RESOURCE_INSTANCE":       "ocftest",
		"OCF_RESOURCE_TYPE":           cfg.Name,
		"OCF_RESOURCE_PROVIDER":       provider,
		"OCF_RESKEY_CRM_meta_timeout": "20000",
		"HA_RSCTMP":                   t.TempDir(),
		// trace_ra's files, which go to HA_VARLIB/trace_ra/AGENT/.
		"HA_VARLIB": t.TempDir(),
	}
	for k, v := range cfg.Params {
		env["OCF_RESKEY_"+k] = v
	}
	for k, v := range cfg.Env {
		env[k] = v
	}
	return env
}

// Env returns a copy of the variables every action of r starts with.
func (r *Runner) Env() map[string]string { return maps.Clone(r.env) }

// StateDir is the agent's state directory in r's runs (HA_RSCTMP): a
// fresh one under the test's temporary directory unless Config.Env chose
// another.
func (r *Runner) StateDir() string { return r.env["HA_RSCTMP"] }

// Run performs action with extra variables on top of the configuration;
// an extra value of "" unsets the variable. A runner of NewExecRunner or
// NewSelfRunner runs the agent's executable as described there.
func (r *Runner) Run(action string, extra map[string]string) Result {
	env := r.actionEnv(extra)
	if r.path != "" {
		return r.runProcess(env, action)
	}
	var stdout, stderr bytes.Buffer
	code := r.agent.Run(context.Background(), ocf.Invocation{
		Args: []string{"agent", action}, Env: ocf.MapEnv(env), Stdout: &stdout, Stderr: &stderr,
	})
	return result(env, code, stdout.String(), stderr.String())
}

// actionEnv is r's environment with extra on top; an extra value of ""
// unsets the variable.
func (r *Runner) actionEnv(extra map[string]string) map[string]string {
	env := make(map[string]string, len(r.env)+len(extra))
	for k, v := range r.env {
		env[k] = v
	}
	for k, v := range extra {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	return env
}

// result is the Result of a run with env that ended with code and
// printed stdout and stderr: the exit reason is the last line of stderr
// with the prefix env chose (Pacemaker's own by default).
func result(env map[string]string, code ocf.Code, stdout, stderr string) Result {
	res := Result{Code: code, Stdout: stdout, Stderr: stderr}
	prefix := env["OCF_EXIT_REASON_PREFIX"]
	if prefix == "" {
		prefix = "ocf-exit-reason:"
	}
	for _, line := range strings.Split(res.Stderr, "\n") {
		if reason, ok := strings.CutPrefix(line, prefix); ok {
			res.Reason = reason
		}
	}
	return res
}

var (
	recurring = map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"}
	probe     = map[string]string{"OCF_RESKEY_CRM_meta_interval": ""}
)

// Conformance runs the ocf-tester sequence in-process, each step a
// subtest: declaration check, meta-data valid against the schemas,
// validate-all, monitor and probe of a stopped resource (also with every
// binary "missing"), stop when stopped, start twice, monitor, probe,
// notify, reload-agent, promote and demote, stop twice. The resource is
// stopped again at the end, even when a step fails.
func Conformance(t *testing.T, a ocf.AnyAgent, cfg Config) {
	t.Helper()
	r := NewRunner(t, a, cfg)
	actions := a.Advertised()
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })

	step := func(name, action string, extra map[string]string, want ...ocf.Code) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			t.Helper()
			got := r.Run(action, extra)
			if !slices.Contains(want, got.Code) {
				t.Fatalf("%s returned %v, want %v; exit reason %q; stderr:\n%s", action, got.Code, want, got.Reason, got.Stderr)
			}
		})
	}
	t.Run("declaration", func(t *testing.T) {
		if err := a.CheckDeclaration(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("meta-data", func(t *testing.T) {
		got := r.Run(ocf.ActionMetaData, map[string]string{"OCF_OUTPUT_FORMAT": "text", "OCF_TESTER_FAIL_HAVE_BINARY": "1"})
		if got.Code != ocf.Success {
			t.Fatalf("meta-data returned %v", got.Code)
		}
		ValidateMetadata(t, []byte(got.Stdout))
	})
	step("validate-all", ocf.ActionValidateAll, nil, ocf.Success)
	step("monitor when stopped", ocf.ActionMonitor, recurring, ocf.NotRunning)
	step("probe when stopped", ocf.ActionMonitor, probe, ocf.NotRunning)
	step("probe without binaries", ocf.ActionMonitor, map[string]string{"OCF_RESKEY_CRM_meta_interval": "0", "OCF_TESTER_FAIL_HAVE_BINARY": "1"}, ocf.NotRunning, ocf.NotInstalled)
	step("stop when stopped", ocf.ActionStop, nil, ocf.Success)
	step("stop without binaries", ocf.ActionStop, map[string]string{"OCF_TESTER_FAIL_HAVE_BINARY": "1"}, ocf.Success)
	step("start", ocf.ActionStart, nil, ocf.Success)
	step("monitor after start", ocf.ActionMonitor, recurring, ocf.Success)
	step("probe after start", ocf.ActionMonitor, probe, ocf.Success)
	step("deep monitor", ocf.ActionMonitor, map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000", "OCF_CHECK_LEVEL": "10"}, ocf.Success, ocf.Degraded)
	step("start again", ocf.ActionStart, nil, ocf.Success)
	step("monitor after second start", ocf.ActionMonitor, recurring, ocf.Success)
	if slices.Contains(actions, ocf.ActionNotify) {
		step("notify", ocf.ActionNotify, map[string]string{
			"OCF_RESKEY_CRM_meta_notify_type": "post", "OCF_RESKEY_CRM_meta_notify_operation": "start",
		}, ocf.Success)
	}
	if slices.Contains(actions, ocf.ActionReloadAgent) {
		step("reload-agent", ocf.ActionReloadAgent, nil, ocf.Success)
		step("monitor after reload-agent", ocf.ActionMonitor, recurring, ocf.Success)
	}
	if slices.Contains(actions, ocf.ActionPromote) {
		step("promote", ocf.ActionPromote, nil, ocf.Success)
		step("monitor promoted", ocf.ActionMonitor, recurring, ocf.RunningPromoted)
		step("promote again", ocf.ActionPromote, nil, ocf.Success)
		step("demote", ocf.ActionDemote, nil, ocf.Success)
		step("monitor demoted", ocf.ActionMonitor, recurring, ocf.Success)
		step("demote again", ocf.ActionDemote, nil, ocf.Success)
	}
	step("stop", ocf.ActionStop, nil, ocf.Success)
	step("monitor after stop", ocf.ActionMonitor, recurring, ocf.NotRunning)
	step("stop again", ocf.ActionStop, nil, ocf.Success)
	step("monitor after second stop", ocf.ActionMonitor, recurring, ocf.NotRunning)
	step("unknown action", "no-such-action", nil, ocf.Unimplemented)
}

// ValidateMetadata checks meta-data XML against the official OCF 1.1
// schema and, when pcs is installed, the schema pcs enforces. It needs
// xmllint (Debian package libxml2-utils) and skips, saying so, without it.
func ValidateMetadata(t testing.TB, xml []byte) {
	t.Helper()
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint not installed (apt-get install libxml2-utils): meta-data not checked against the schemas")
	}
	dir := t.TempDir()
	official, doc := filepath.Join(dir, "ra-api.rng"), filepath.Join(dir, "meta-data.xml")
	if err := os.WriteFile(official, schema, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(doc, xml, 0o644); err != nil {
		t.Fatal(err)
	}
	schemas := []string{official}
	if _, err := os.Stat(PcsSchema); err == nil {
		schemas = append(schemas, PcsSchema)
	} else {
		t.Logf("pcs not installed: %s not checked", PcsSchema)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, rng := range schemas {
		if _, err := process.Run(ctx, xmllint, "--noout", "--relaxng", rng, doc); err != nil {
			t.Errorf("meta-data does not validate against %s: %v", rng, err)
			var ee *process.ExitError
			if errors.As(err, &ee) {
				t.Logf("xmllint:\n%s", ee.Stderr)
			}
		}
	}
}
