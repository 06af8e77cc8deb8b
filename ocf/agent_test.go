package ocf

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// fakeService is the state behind testAgent: what a real service's
// process table or files would say.
type fakeService struct {
	mu        sync.Mutex
	state     State
	validate  error // returned by Validate
	monitor   error // returned by Monitor
	startErr  error
	stopErr   error
	readyIn   int // monitors that still report Stopped after start
	calls     []string
	panicking bool
}

func (s *fakeService) record(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, name)
}

type testConfig struct {
	Name  string
	Count int
	On    bool
	Mode  string
	Port  int
	Wait  time.Duration
	Hosts []string
}

func testAgent(s *fakeService) *Agent[testConfig] {
	return &Agent[testConfig]{
		Name: "t", Version: "1.2.3", ShortDesc: "test agent", LongDesc: "A test agent.",
		Params: func(c *testConfig) []Param {
			return []Param{
				String(&c.Name, "name", "Name", Required(), UniqueGroup("name")),
				String(&c.Name, "old_name", "Old name", Deprecated("name", "Use name.")),
				Int(&c.Count, "count", "Count", Default("3"), Range(1, 5), Reloadable()),
				Bool(&c.On, "on", "On", Default("false")),
				Select(&c.Mode, "mode", "Mode", []string{"tcp", "http"}, Default("tcp")),
				Port(&c.Port, "port", "Port"),
				Duration(&c.Wait, "wait", "Wait", Default("1s")),
				List(&c.Hosts, "hosts", "Hosts"),
			}
		},
		Validate: func(ctx context.Context, r *Request[testConfig]) error { s.record("validate"); return s.validate },
		Start: func(ctx context.Context, r *Request[testConfig]) error {
			s.record("start")
			if s.panicking {
				panic("boom")
			}
			if s.startErr != nil {
				return s.startErr
			}
			s.mu.Lock()
			s.state = Running
			s.mu.Unlock()
			return nil
		},
		Stop: func(ctx context.Context, r *Request[testConfig]) error {
			s.record("stop")
			if s.stopErr != nil {
				return s.stopErr
			}
			s.mu.Lock()
			s.state = Stopped
			s.mu.Unlock()
			return nil
		},
		Monitor: func(ctx context.Context, r *Request[testConfig]) (State, error) {
			s.record("monitor")
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.readyIn > 0 {
				s.readyIn--
				return Stopped, nil
			}
			return s.state, s.monitor
		},
		Promote: func(ctx context.Context, r *Request[testConfig]) error { s.state = Promoted; return nil },
		Demote:  func(ctx context.Context, r *Request[testConfig]) error { s.state = Running; return nil },
		Notify:  func(ctx context.Context, r *Request[testConfig]) error { return errors.New("ignored") },
	}
}

type result struct {
	Code   Code
	Reason string
}

func run(t *testing.T, a AnyAgent, action string, env map[string]string) (result, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	vars := map[string]string{"OCF_RESOURCE_INSTANCE": "r1", "OCF_RESKEY_name": "x", "HA_RSCTMP": t.TempDir()}
	for k, v := range env {
		if v == "<unset>" {
			delete(vars, k)
			continue
		}
		vars[k] = v
	}
	code := a.Run(context.Background(), Invocation{Args: []string{"agent", action}, Env: MapEnv(vars), Stdout: &stdout, Stderr: &stderr})
	reason := ""
	for _, line := range strings.Split(stderr.String(), "\n") {
		if r, ok := strings.CutPrefix(line, "ocf-exit-reason:"); ok {
			reason = r
		}
	}
	return result{code, reason}, stdout.String()
}

var (
	probe     = map[string]string{}
	recurring = map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"}
	missing   = Errorf(NotInstalled, "binary foo not found; install it")
	badArgs   = Errorf(InvalidArgs, "config file /etc/foo missing")
)

func TestContextRules(t *testing.T) {
	tests := []struct {
		name    string
		svc     *fakeService
		action  string
		env     map[string]string
		want    Code
		reason  string // substring of the exit reason; "" means none written
		noCalls bool
	}{
		{name: "probe stopped", action: "monitor", env: probe, want: NotRunning},
		{name: "probe running", svc: &fakeService{state: Running}, action: "monitor", env: probe, want: Success},
		{name: "probe with interval 0", action: "monitor", env: map[string]string{"OCF_RESKEY_CRM_meta_interval": "0"}, want: NotRunning},
		{name: "probe software missing", svc: &fakeService{validate: missing}, action: "monitor", env: probe, want: NotRunning},
		{name: "probe config missing", svc: &fakeService{validate: badArgs}, action: "monitor", env: probe, want: NotRunning},
		{name: "probe software removed under a running process", svc: &fakeService{validate: missing, state: Running}, action: "monitor", env: probe, want: Success},
		{name: "probe config removed under a running process", svc: &fakeService{validate: badArgs, state: Running}, action: "monitor", env: probe, want: Success},
		{name: "recurring monitor software removed under a running process", svc: &fakeService{validate: missing, state: Running}, action: "monitor", env: recurring, want: Success},
		{name: "probe software removed, process degraded", svc: &fakeService{validate: missing, state: Running, monitor: Errorf(Degraded, "no leader")}, action: "monitor", env: probe, want: Degraded, reason: "no leader"},
		{name: "probe software missing, monitor cannot tell", svc: &fakeService{validate: missing, monitor: errors.New("pid file unreadable")}, action: "monitor", env: probe, want: NotRunning},
		{name: "probe invalid configuration is not looked past", svc: &fakeService{validate: Errorf(Misconfigured, "x and y exclude each other"), state: Running}, action: "monitor", env: probe, want: Misconfigured, reason: "exclude each other"},
		{name: "recurring monitor software missing", svc: &fakeService{validate: missing}, action: "monitor", env: recurring, want: NotInstalled, reason: "binary foo not found"},
		{name: "recurring monitor config missing", svc: &fakeService{validate: badArgs}, action: "monitor", env: recurring, want: InvalidArgs, reason: "config file"},
		{name: "recurring monitor stopped", action: "monitor", env: recurring, want: NotRunning},
		{name: "monitor promoted", svc: &fakeService{state: Promoted}, action: "monitor", env: recurring, want: RunningPromoted},
		{name: "monitor degraded", svc: &fakeService{state: Running, monitor: Errorf(Degraded, "no leader")}, action: "monitor", env: recurring, want: Degraded, reason: "no leader"},
		{name: "monitor degraded promoted", svc: &fakeService{state: Promoted, monitor: Errorf(Degraded, "lagging")}, action: "monitor", env: recurring, want: DegradedPromoted, reason: "lagging"},
		{name: "monitor failed promoted", svc: &fakeService{state: Promoted, monitor: errors.New("replication broken")}, action: "monitor", env: recurring, want: FailedPromoted, reason: "replication broken"},
		{name: "monitor failure", svc: &fakeService{state: Running, monitor: errors.New("port closed")}, action: "monitor", env: recurring, want: GenericFailure, reason: "port closed"},
		{name: "monitor not running sentinel", svc: &fakeService{state: Running, monitor: ErrNotRunning}, action: "monitor", env: recurring, want: NotRunning},
		{name: "stop software missing", svc: &fakeService{validate: missing}, action: "stop", want: Success},
		{name: "stop software missing still stops", svc: &fakeService{validate: missing, state: Running, stopErr: errors.New("kill failed")}, action: "stop", want: GenericFailure, reason: "kill failed"},
		{name: "stop software missing, stop reports it too", svc: &fakeService{validate: missing, state: Running, stopErr: missing}, action: "stop", want: Success},
		{name: "stop stopped", action: "stop", want: Success},
		{name: "stop returns not running", svc: &fakeService{stopErr: ErrNotRunning}, action: "stop", want: Success},
		{name: "stop fails", svc: &fakeService{state: Running, stopErr: errors.New("cannot kill")}, action: "stop", want: GenericFailure, reason: "cannot kill"},
		{name: "start software missing", svc: &fakeService{validate: missing}, action: "start", want: NotInstalled, reason: "install it"},
		{name: "start config missing", svc: &fakeService{validate: badArgs}, action: "start", want: InvalidArgs},
		{name: "start", action: "start", want: Success},
		{name: "start waits for monitor", svc: &fakeService{readyIn: 3}, action: "start", want: Success},
		{name: "start never ready", svc: &fakeService{readyIn: 1 << 30}, action: "start", env: map[string]string{"OCF_RESKEY_CRM_meta_timeout": "1000"}, want: GenericFailure, reason: "did not complete before the operation timeout"},
		{name: "start fails fast on hard monitor error", svc: &fakeService{monitor: Errorf(InsufficientPrivileges, "permission denied")}, action: "start", want: InsufficientPrivileges, reason: "permission denied"},
		{name: "start returns not running", svc: &fakeService{startErr: ErrNotRunning}, action: "start", want: GenericFailure, reason: "not running"},
		{name: "validate software missing", svc: &fakeService{validate: missing}, action: "validate-all", want: NotInstalled},
		{name: "validate level 0 skips local checks", svc: &fakeService{validate: missing}, action: "validate-all", env: map[string]string{"OCF_CHECK_LEVEL": "0"}, want: Success},
		{name: "missing required param", action: "start", env: map[string]string{"OCF_RESKEY_name": "<unset>"}, want: Misconfigured, reason: "parameter name is required", noCalls: true},
		{name: "bad parameter on stop still stops", svc: &fakeService{state: Running}, action: "stop", env: map[string]string{"OCF_RESKEY_count": "many"}, want: Success},
		{name: "bad parameter on stop, stop fails", svc: &fakeService{state: Running, stopErr: errors.New("kill failed")}, action: "stop", env: map[string]string{"OCF_RESKEY_count": "many"}, want: GenericFailure, reason: "kill failed"},
		{name: "config error from Validate on stop still stops", svc: &fakeService{state: Running, validate: Errorf(Misconfigured, "x and y exclude each other")}, action: "stop", want: Success},
		{name: "missing required param on probe", action: "monitor", env: map[string]string{"OCF_RESKEY_name": "<unset>"}, want: Misconfigured, reason: "parameter name is required", noCalls: true},
		{name: "deprecated alias satisfies required", action: "validate-all", env: map[string]string{"OCF_RESKEY_name": "<unset>", "OCF_RESKEY_old_name": "y"}, want: Success},
		{name: "bad integer", action: "start", env: map[string]string{"OCF_RESKEY_count": "many"}, want: Misconfigured, reason: `parameter count="many" is invalid: not an integer`},
		{name: "integer out of range", action: "validate-all", env: map[string]string{"OCF_RESKEY_count": "9"}, want: Misconfigured, reason: "must be from 1 to 5"},
		{name: "bad boolean", action: "validate-all", env: map[string]string{"OCF_RESKEY_on": "maybe"}, want: Misconfigured, reason: "use true or false"},
		{name: "bad select", action: "validate-all", env: map[string]string{"OCF_RESKEY_mode": "udp"}, want: Misconfigured, reason: "not one of tcp, http"},
		{name: "bad port", action: "validate-all", env: map[string]string{"OCF_RESKEY_port": "70000"}, want: Misconfigured, reason: "from 1 to 65535"},
		{name: "bad duration", action: "validate-all", env: map[string]string{"OCF_RESKEY_wait": "soon"}, want: Misconfigured, reason: "not a duration"},
		{name: "bad trace_ra", action: "validate-all", env: map[string]string{"OCF_RESKEY_trace_ra": "sometimes"}, want: Misconfigured, reason: "trace_ra"},
		{name: "unknown action", action: "frobnicate", want: Unimplemented, reason: "not implemented", noCalls: true},
		{name: "no action", action: "", want: InvalidArgs, noCalls: true},
		{name: "help", action: "--help", want: Success, noCalls: true},
		{name: "notify errors are ignored", action: "notify", want: Success},
		{name: "promote", svc: &fakeService{state: Running}, action: "promote", want: Success},
		{name: "demote", svc: &fakeService{state: Promoted}, action: "demote", want: Success},
		{name: "reload-agent without handler", action: "reload-agent", want: Success},
		{name: "panic", svc: &fakeService{panicking: true}, action: "start", want: GenericFailure, reason: "internal error in t start: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.svc == nil {
				tt.svc = &fakeService{}
			}
			got, _ := run(t, testAgent(tt.svc), tt.action, tt.env)
			if got.Code != tt.want {
				t.Errorf("rc = %v, want %v (reason %q)", got.Code, tt.want, got.Reason)
			}
			if tt.reason == "" && got.Reason != "" && got.Code != Success {
				// A clean "not running" needs no reason; others may have one.
				if got.Code == NotRunning {
					t.Errorf("unexpected exit reason %q", got.Reason)
				}
			}
			if tt.reason != "" && !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("exit reason = %q, want it to contain %q", got.Reason, tt.reason)
			}
			if tt.noCalls && len(tt.svc.calls) > 0 {
				t.Errorf("agent functions called: %v", tt.svc.calls)
			}
		})
	}
}

func TestStopVerifiesStopped(t *testing.T) {
	// Stop "succeeds" but the service stays up: the SDK must not believe it.
	s := &fakeService{state: Running}
	a := testAgent(s)
	a.Stop = func(ctx context.Context, r *Request[testConfig]) error { return nil }
	got, _ := run(t, a, "stop", map[string]string{"OCF_RESKEY_CRM_meta_timeout": "1000"})
	if got.Code != GenericFailure || !strings.Contains(got.Reason, "stop did not complete") {
		t.Errorf("got %+v, want GenericFailure with a stop reason", got)
	}
}

func TestDecodedValues(t *testing.T) {
	var got testConfig
	a := testAgent(&fakeService{})
	a.Start = func(ctx context.Context, r *Request[testConfig]) error { got = *r.Config; return nil }
	a.Monitor = func(ctx context.Context, r *Request[testConfig]) (State, error) { return Running, nil }
	res, _ := run(t, a, "start", map[string]string{
		"OCF_RESKEY_name": "n", "OCF_RESKEY_old_name": "ignored", "OCF_RESKEY_on": "YES",
		"OCF_RESKEY_port": "8080", "OCF_RESKEY_wait": "1m30s", "OCF_RESKEY_hosts": "a, b c",
	})
	if res.Code != Success {
		t.Fatalf("start: %+v", res)
	}
	want := testConfig{Name: "n", Count: 3, On: true, Mode: "tcp", Port: 8080, Wait: 90 * time.Second, Hosts: []string{"a", "b", "c"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestDeadline(t *testing.T) {
	tests := []struct{ timeout, want time.Duration }{
		{20 * time.Second, 18 * time.Second},
		{5 * time.Second, 4500 * time.Millisecond},
		{120 * time.Second, 115 * time.Second},
		{600 * time.Millisecond, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := deadline(tt.timeout); got != tt.want {
			t.Errorf("deadline(%v) = %v, want %v", tt.timeout, got, tt.want)
		}
	}
}

func TestActionContextHasDeadline(t *testing.T) {
	var left time.Duration
	a := testAgent(&fakeService{})
	a.Validate = func(ctx context.Context, r *Request[testConfig]) error {
		d, _ := ctx.Deadline()
		left = time.Until(d)
		return nil
	}
	run(t, a, "validate-all", map[string]string{"OCF_RESKEY_CRM_meta_timeout": "30000"})
	if left < 25*time.Second || left > 27*time.Second {
		t.Errorf("time left = %v, want about 27s (30s minus a 3s margin)", left)
	}
}

// A monitor that knows waiting cannot help (the daemon exited) ends the
// wait after start at once, with its own reason, not the timeout's.
func TestPermanentFailureEndsTheWait(t *testing.T) {
	s := &fakeService{monitor: Permanent(Errorf(GenericFailure, "daemon exited: port 80 in use"))}
	got, _ := run(t, testAgent(s), "start", map[string]string{"OCF_RESKEY_CRM_meta_timeout": "2000"})
	if got.Code != GenericFailure || got.Reason != "daemon exited: port 80 in use" {
		t.Errorf("got %+v, want GenericFailure with the monitor's own reason", got)
	}
	if n := strings.Count(strings.Join(s.calls, " "), "monitor"); n != 1 {
		t.Errorf("monitor called %d times after start, want 1: %v", n, s.calls)
	}
}

// The validation error reaches Monitor and Stop, which run despite it.
func TestValidationErrReachesMonitorAndStop(t *testing.T) {
	for _, action := range []string{"monitor", "stop"} {
		var seen error
		s := &fakeService{validate: missing, state: Running}
		a := testAgent(s)
		mon, stop := a.Monitor, a.Stop
		a.Monitor = func(ctx context.Context, r *Request[testConfig]) (State, error) {
			if r.Action == action {
				seen = r.ValidationErr()
			}
			return mon(ctx, r)
		}
		a.Stop = func(ctx context.Context, r *Request[testConfig]) error {
			seen = r.ValidationErr()
			return stop(ctx, r)
		}
		run(t, a, action, probe)
		if seen != missing {
			t.Errorf("%s: ValidationErr() = %v, want %v", action, seen, missing)
		}
	}
}

func TestExitReasonCapped(t *testing.T) {
	long := "parameter binary: " + strings.Repeat("é", 200) // 2-byte runes
	s := &fakeService{startErr: errors.New("\x1b[31mred\x1b[0m \x1b]0;title\x07" + long)}
	got, _ := run(t, testAgent(s), "start", nil)
	if len(got.Reason) > MaxReason {
		t.Errorf("reason is %d bytes, more than %d: %q", len(got.Reason), MaxReason, got.Reason)
	}
	if !strings.HasPrefix(got.Reason, "red parameter binary: é") || !strings.HasSuffix(got.Reason, "é...") {
		t.Errorf("reason %q: escape sequences kept, or not cut on a rune boundary", got.Reason)
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"plain", "port 80 in use", 0, "port 80 in use"},
		{"lines and tabs fold", " a\n\tb\r\nc ", 0, "a b c"},
		{"vertical tab, form feed, NEL, line separator", "a\vb\fc\u0085d\u2028e", 0, "a b c d e"},
		{"CSI colour", "\x1b[1;31merror\x1b[0m: bad", 0, "error: bad"},
		{"OSC title with ST", "\x1b]0;pwned\x1b\\ok", 0, "ok"},
		{"bare ESC", "a\x1bcb", 0, "ab"},
		{"C0 and DEL", "a\x00b\x07c\x7fd", 0, "abcd"},
		{"C1", "a\u009bb", 0, "ab"},
		{"bidi override", "file\u202egnp.exe", 0, "filegnp.exe"},
		{"invalid UTF-8", "a\xffb", 0, "a\ufffdb"},
		{"cut on rune boundary", "ab€€€", 8, "ab€..."},
		{"cut exactly fits", "abcdef", 6, "abcdef"},
		{"cut ascii", "abcdefgh", 6, "abc..."},
		{"tiny max", "abcdef", 2, ".."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := OneLine(tt.in, tt.max)
			if got != tt.want {
				t.Errorf("OneLine(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
			if tt.max > 0 && len(got) > tt.max {
				t.Errorf("%d bytes, more than %d", len(got), tt.max)
			}
		})
	}
}

func FuzzOneLine(f *testing.F) {
	for _, s := range []string{"a\x1b[", "\x1b]", "€€", "a\nb", "\xff\xfe"} {
		f.Add(s, 10)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max = max % 300
		got := OneLine(s, max)
		if max > 0 && len(got) > max {
			t.Fatalf("OneLine(%q, %d) is %d bytes", s, max, len(got))
		}
		if !utf8.ValidString(got) {
			t.Fatalf("OneLine(%q, %d) = %q is not valid UTF-8", s, max, got)
		}
		for _, r := range got {
			if r == 0x1b || r == '\n' || r == '\r' || unicode.IsControl(r) {
				t.Fatalf("OneLine(%q, %d) = %q keeps control character %U", s, max, got, r)
			}
		}
	})
}

func TestExitReasonPrefixAndOneLine(t *testing.T) {
	var stderr bytes.Buffer
	s := &fakeService{startErr: errors.New("line one\nline two")}
	code := testAgent(s).Run(context.Background(), Invocation{
		Args:   []string{"t", "start"},
		Env:    MapEnv(map[string]string{"OCF_RESKEY_name": "x", "OCF_EXIT_REASON_PREFIX": "REASON:", "HA_RSCTMP": t.TempDir()}),
		Stderr: &stderr,
	})
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if code != GenericFailure || lines[len(lines)-1] != "REASON:line one line two" {
		t.Errorf("rc %v, stderr:\n%s", code, stderr.String())
	}
}

func TestCheck(t *testing.T) {
	a := testAgent(&fakeService{})
	if err := a.CheckDeclaration(); err != nil {
		t.Fatalf("valid agent: %v", err)
	}
	broken := *a
	broken.Demote = nil
	broken.Params = func(c *testConfig) []Param {
		return []Param{
			Int(&c.Count, "count", "Count", Default("x")),
			String(&c.Name, "count", "Again", Required(), Default("y")),
			String(&c.Name, "old", "Old", Deprecated("nonexistent", "")),
			String(&c.Mode, "ranged", "Ranged string", Range(1, 2)),
			Int(&c.Port, "floored", "Floored int", MinDuration(time.Second)),
			Duration(&c.Wait, "pathed", "Pathed duration", AbsolutePath()),
		}
	}
	err := broken.CheckDeclaration()
	for _, want := range []string{"Promote and Demote", "default \"x\"", "declared twice", "required and has a default", "undeclared nonexistent",
		"ranged: Range applies to Int", "floored: MinDuration applies to Duration", "pathed: AbsolutePath applies to String"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check() = %v, want it to mention %q", err, want)
		}
	}
}

func TestLoggingTargets(t *testing.T) {
	dir := t.TempDir()
	s := &fakeService{startErr: Errorf(GenericFailure, "disk full")}
	var stderr bytes.Buffer
	env := map[string]string{"OCF_RESKEY_name": "x", "OCF_RESOURCE_INSTANCE": "r1", "HA_RSCTMP": dir,
		"HA_LOGFILE": dir + "/ha.log", "HA_DEBUGLOG": dir + "/debug.log", "HA_debug": "1",
		"OCF_TRACE_RA": "1", "OCF_TRACE_FILE": dir + "/trace"}
	testAgent(s).Run(context.Background(), Invocation{Args: []string{"t", "start"}, Env: MapEnv(env), Stderr: &stderr})
	for file, want := range map[string]string{"ha.log": "disk full", "debug.log": "level=DEBUG", "trace": "name=x"} {
		data := readFile(t, dir+"/"+file)
		if !strings.Contains(data, want) || !strings.Contains(data, "rsc=t(r1)") {
			t.Errorf("%s = %q, want %q tagged with the resource", file, data, want)
		}
	}
	// With a log file configured, stderr carries only the exit reason.
	if got := strings.TrimSpace(stderr.String()); got != "ocf-exit-reason:disk full" {
		t.Errorf("stderr = %q", got)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestExclusiveActionsHoldTheLock(t *testing.T) {
	dir := t.TempDir()
	held := make(chan struct{})
	release := make(chan struct{})
	second := make(chan Code)
	a := testAgent(&fakeService{})
	a.Exclusive = true
	a.Start = func(ctx context.Context, r *Request[testConfig]) error {
		if r.Config.Name == "first" {
			close(held)
			<-release
		}
		return nil
	}
	a.Monitor = func(ctx context.Context, r *Request[testConfig]) (State, error) { return Running, nil }
	runAs := func(name, timeout string) Code {
		return a.Run(context.Background(), Invocation{Args: []string{"t", "start"}, Env: MapEnv(map[string]string{
			"OCF_RESKEY_name": name, "HA_RSCTMP": dir, "OCF_RESOURCE_INSTANCE": "r1", "OCF_RESKEY_CRM_meta_timeout": timeout})})
	}
	go func() { runAs("first", "20000") }()
	<-held
	go func() { second <- runAs("second", "1000") }()
	if got := <-second; got != GenericFailure {
		t.Errorf("second start while the lock is held: %v, want a timeout failure", got)
	}
	// Monitors never wait for the lock.
	var stderr bytes.Buffer
	mon := a.Run(context.Background(), Invocation{Args: []string{"t", "monitor"}, Stderr: &stderr, Env: MapEnv(map[string]string{
		"OCF_RESKEY_name": "m", "HA_RSCTMP": dir, "OCF_RESOURCE_INSTANCE": "r1", "OCF_RESKEY_CRM_meta_timeout": "1000"})})
	if mon != Success {
		t.Errorf("monitor while the lock is held: %v %s", mon, stderr.String())
	}
	close(release)
	if got := runAs("third", "5000"); got != Success {
		t.Errorf("start after release: %v", got)
	}
}

// Stop runs despite invalid parameters, and sees a parameter's default, or
// its zero value, never the invalid value.
func TestStopSeesNoInvalidValue(t *testing.T) {
	var seen testConfig
	s := &fakeService{}
	a := testAgent(s)
	a.Params = func(c *testConfig) []Param {
		return []Param{
			String(&c.Name, "name", "Name", Required(), AbsolutePath()),
			Int(&c.Count, "count", "Count", Default("3"), Range(1, 5)),
			Port(&c.Port, "port", "Port"),
		}
	}
	a.Stop = func(ctx context.Context, r *Request[testConfig]) error { seen = *r.Config; return nil }
	got, _ := run(t, a, "stop", map[string]string{"OCF_RESKEY_name": "run/x.pid", "OCF_RESKEY_count": "9", "OCF_RESKEY_port": "0"})
	if got.Code != Success {
		t.Fatalf("stop = %v %q", got.Code, got.Reason)
	}
	if seen.Name != "" || seen.Count != 3 || seen.Port != 0 {
		t.Errorf("Stop saw name=%q count=%d port=%d; want \"\" (no default), 3 (the default), 0", seen.Name, seen.Count, seen.Port)
	}
}

// The state directory is cleared at boot and nothing else need create
// it: an agent that is not Exclusive (so takes no lock there) and writes
// its state file in Start finds it, while a probe before that reads its
// absence as "stopped" and creates nothing.
func TestStateDirectoryAfterBoot(t *testing.T) {
	type C = struct{}
	a := &Agent[C]{
		Name: "state", Version: "1", ShortDesc: "state file",
		Start: func(ctx context.Context, r *Request[C]) error {
			return os.WriteFile(r.StatePath(".state"), nil, 0o644)
		},
		Stop: func(ctx context.Context, r *Request[C]) error {
			if err := os.Remove(r.StatePath(".state")); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		},
		Monitor: func(ctx context.Context, r *Request[C]) (State, error) {
			if _, err := os.Stat(r.StatePath(".state")); errors.Is(err, fs.ErrNotExist) {
				return Stopped, nil
			} else if err != nil {
				return Stopped, err
			}
			return Running, nil
		},
	}
	dir := filepath.Join(t.TempDir(), "resource-agents")
	env := map[string]string{"HA_RSCTMP": dir}
	if got, _ := run(t, a, ActionMonitor, env); got.Code != NotRunning {
		t.Fatalf("probe = %v %q, want not running", got.Code, got.Reason)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a probe created the state directory: %v", err)
	}
	if got, _ := run(t, a, ActionStart, env); got.Code != Success {
		t.Fatalf("start = %v %q, want success", got.Code, got.Reason)
	}
	if got, _ := run(t, a, ActionStop, env); got.Code != Success {
		t.Errorf("stop = %v %q", got.Code, got.Reason)
	}
}
