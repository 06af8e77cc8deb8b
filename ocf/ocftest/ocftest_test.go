package ocftest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ha-framework/ha-framework/ocf"
)

// TestTesterFailures reads a real ocf-tester run on a shell agent whose
// start fails (testdata/ocf-tester-failed.txt).
func TestTesterFailures(t *testing.T) {
	out, err := os.ReadFile("testdata/ocf-tester-failed.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"* rc=4: Your agent produces meta-data which does not conform to ra-api-1.dtd",
		"* rc=1: Start failed.  Did you supply enough options with -o ?",
		"aborted",
	}
	if diff := cmp.Diff(want, TesterFailures(string(out))); diff != "" {
		t.Errorf("TesterFailures (-want +got):\n%s", diff)
	}
	if got := TesterFailures("Beginning tests for /x...\n/x passed all tests\n"); len(got) != 0 {
		t.Errorf("TesterFailures of a clean run = %q", got)
	}
}

func TestUntraversable(t *testing.T) {
	private := filepath.Join(t.TempDir(), "private")
	open := filepath.Join(private, "open")
	if err := os.MkdirAll(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	if got := untraversable(open); got != private {
		t.Errorf("untraversable(%s) = %q, want its 0700 parent", open, got)
	}
	if got := untraversable("/"); got != "" {
		t.Errorf("untraversable(/) = %q", got)
	}
	if got := untraversable("/no/such/dir"); got != "/no/such/dir" {
		t.Errorf("untraversable of a missing directory = %q", got)
	}
}

// agent is a minimal pseudo-resource for the harness's own tests.
func agent() *ocf.Agent[struct{ Word string }] {
	type C = struct{ Word string }
	return &ocf.Agent[C]{
		Name: "harness", Exclusive: true,
		Params: func(c *C) []ocf.Param {
			return []ocf.Param{ocf.String(&c.Word, "word", "A word", ocf.Required())}
		},
		Start: func(ctx context.Context, r *ocf.Request[C]) error {
			return os.WriteFile(r.StatePath(".state"), []byte(r.Config.Word), 0o644)
		},
		Stop: func(ctx context.Context, r *ocf.Request[C]) error {
			_ = os.Remove(r.StatePath(".state"))
			return nil
		},
		Monitor: func(ctx context.Context, r *ocf.Request[C]) (ocf.State, error) {
			if _, err := os.Stat(r.StatePath(".state")); err != nil {
				return ocf.Stopped, nil
			}
			return ocf.Running, nil
		},
	}
}

// With trace_ra=1 (an agent's test of tracing, or of reload-agent of
// trace_ra), the trace files stay in the test's HA_VARLIB, not in the
// system's /var/lib/heartbeat/trace_ra, where they would pile up.
func TestRunnerKeepsTracesInTheTest(t *testing.T) {
	instance := "trace-" + randomHex(t)
	system, _ := filepath.Glob("/var/lib/heartbeat/trace_ra/*/" + instance + ".*")
	t.Cleanup(func() {
		m, _ := filepath.Glob("/var/lib/heartbeat/trace_ra/*/" + instance + ".*")
		for _, f := range m {
			os.Remove(f)
		}
	})
	r := NewRunner(t, agent(), Config{Name: "harness", Params: map[string]string{"word": "w", "trace_ra": "1"},
		Env: map[string]string{"OCF_RESOURCE_INSTANCE": instance}})
	if got := r.Run(ocf.ActionValidateAll, nil); got.Code != ocf.Success {
		t.Fatalf("validate-all: %+v", got)
	}
	if after, _ := filepath.Glob("/var/lib/heartbeat/trace_ra/*/" + instance + ".*"); len(after) > len(system) {
		t.Errorf("trace written outside the test: %v", after)
	}
	varlib := r.Env()["HA_VARLIB"]
	if m, _ := filepath.Glob(filepath.Join(varlib, "trace_ra", "*", instance+".validate-all.*")); varlib == "" || !strings.HasPrefix(varlib, os.TempDir()) || len(m) != 1 {
		t.Errorf("HA_VARLIB = %q holds traces %v; want one directory of the test with the action's trace", varlib, m)
	}
}

func TestRunner(t *testing.T) {
	r := NewRunner(t, agent(), Config{Name: "harness", Params: map[string]string{"word": "w"}})
	env := r.Env()
	if env["OCF_RESOURCE_PROVIDER"] != defaultProvider || env["OCF_RESKEY_word"] != "w" || env["OCF_RESOURCE_TYPE"] != "harness" {
		t.Errorf("Env() = %v", env)
	}
	if !strings.HasPrefix(r.StateDir(), os.TempDir()) || r.StateDir() != env["HA_RSCTMP"] {
		t.Errorf("StateDir() = %q, HA_RSCTMP = %q; want one directory of the test", r.StateDir(), env["HA_RSCTMP"])
	}
	env["OCF_RESKEY_word"] = "changed"
	if r.Env()["OCF_RESKEY_word"] != "w" {
		t.Error("changing Env()'s result changed the runner")
	}

	if got := r.Run(ocf.ActionStart, nil); got.Code != ocf.Success {
		t.Fatalf("start: %+v", got)
	}
	entries, _ := os.ReadDir(r.StateDir())
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"harness-ocftest.lock", "harness-ocftest.state"}, names); diff != "" {
		t.Errorf("state directory (-want +got):\n%s", diff)
	}

	// An extra "" unsets a variable; the reason is the last one, read
	// with the configured prefix.
	got := r.Run(ocf.ActionValidateAll, map[string]string{"OCF_RESKEY_word": "", "OCF_EXIT_REASON_PREFIX": "WHY:"})
	if got.Code != ocf.Misconfigured || !strings.HasPrefix(got.Reason, "parameter word is required") {
		t.Errorf("validate-all without word = %v %q", got.Code, got.Reason)
	}

	// Config.Env overrides what the harness chose, provider included.
	mine := t.TempDir()
	r = NewRunner(t, agent(), Config{Name: "harness", Provider: "acme", Env: map[string]string{"HA_RSCTMP": mine}})
	if r.StateDir() != mine || r.Env()["OCF_RESOURCE_PROVIDER"] != "acme" {
		t.Errorf("StateDir() = %q, provider %q; want %q, acme", r.StateDir(), r.Env()["OCF_RESOURCE_PROVIDER"], mine)
	}
}

func TestConformancePasses(t *testing.T) {
	Conformance(t, agent(), Config{Name: "harness", Params: map[string]string{"word": "w"}})
}

// recorder is a testing.TB that records failures and skips instead of
// reporting them, so that a test can check a helper fails when it must.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	skip   string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }

func (r *recorder) Skip(args ...any) { r.skip = fmt.Sprint(args...); runtime.Goexit() }

func (r *recorder) Logf(string, ...any) {}

// run calls f with r on a goroutine of its own, as Fatalf and Skip end
// it.
func (r *recorder) run(f func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
}

func TestValidateMetadata(t *testing.T) {
	var meta strings.Builder
	if err := agent().WriteMetadata(&meta); err != nil {
		t.Fatal(err)
	}
	good := &recorder{TB: t}
	good.run(func(tb testing.TB) { ValidateMetadata(tb, []byte(meta.String())) })
	if good.skip != "" {
		t.Skip(good.skip)
	}
	if len(good.errors) != 0 {
		t.Errorf("valid meta-data rejected: %q", good.errors)
	}
	bad := &recorder{TB: t}
	broken := strings.Replace(meta.String(), "<actions>", "<actions><bogus/>", 1)
	bad.run(func(tb testing.TB) { ValidateMetadata(tb, []byte(broken)) })
	if len(bad.errors) == 0 || !strings.Contains(bad.errors[0], "does not validate") {
		t.Errorf("meta-data with an unknown element: errors %q, want one saying it does not validate", bad.errors)
	}
}

func TestCopyForNobody(t *testing.T) {
	src := filepath.Join(t.TempDir(), "agent")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	dst := copyForNobody(t, src, "named")
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dst) != "named" || fi.Mode().Perm() != 0o755 || untraversable(filepath.Dir(dst)) != "" {
		t.Errorf("copy %s has mode %v; want 0755 in a directory everyone can enter", dst, fi.Mode().Perm())
	}
}
