package ocf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/ocf/process"
)

// State is what a monitor found.
type State int

const (
	// Stopped: cleanly not running here (OCF_NOT_RUNNING).
	Stopped State = iota
	// Running: active (in the unpromoted role for promotable resources).
	Running
	// Promoted: active in the promoted role.
	Promoted
)

func (s State) String() string {
	switch s {
	case Stopped:
		return "stopped"
	case Running:
		return "running"
	case Promoted:
		return "promoted"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Func is the signature of every action but monitor.
type Func[C any] func(ctx context.Context, r *Request[C]) error

// Agent declares a resource agent. C is the agent's configuration type:
// Params binds each parameter to a field of a fresh C, and every action
// receives the decoded C in its Request.
//
// Start, Stop and Monitor are mandatory. Every other action is advertised in
// the meta-data, and dispatched, only when its function is set; an unset
// action answers OCF_ERR_UNIMPLEMENTED.
type Agent[C any] struct {
	Name      string // the agent's file name, as in ocf:PROVIDER:NAME
	Version   string // the agent's own version (the version= attribute)
	ShortDesc string
	LongDesc  string

	// Exclusive makes every action that changes the resource (start,
	// stop, promote, demote, reload-agent, migrate_to, migrate_from) hold
	// its lock (Request.Lock) from validation to the end, so that an
	// administrator's crm_resource --force-start cannot overlap the
	// cluster's own stop. Monitors never wait for it.
	Exclusive bool

	// Params declares the instance parameters, bound to fields of c.
	Params func(c *C) []Param
	// Operations overrides the advertised timeouts and intervals (see
	// Operation).
	Operations []Operation

	// Validate checks the decoded configuration against this node: files
	// and binaries present, permissions. It runs before every action but
	// meta-data, and for validate-all unless OCF_CHECK_LEVEL is 0. Return
	// errors with NotInstalled, InvalidArgs or InsufficientPrivileges for local problems and
	// Misconfigured for parameter combinations that can never work: the
	// SDK maps them by context (a probe reports "not running", a start
	// fails on this node only). A stop runs whatever Validate or decoding
	// found, because a failed stop gets the node fenced, and so does a
	// monitor when Validate found something missing on this node (see
	// Request.ValidationErr): Stop and Monitor must cope with a partial
	// configuration. A parameter whose value is invalid holds its default
	// there, or its zero value when it has none, never the invalid value
	// itself. Keep Validate cheap: it runs on every
	// monitor.
	Validate Func[C]

	// Start brings the resource up. After it returns nil the SDK polls
	// Monitor until the resource is running, so Start may return as soon
	// as the service is launched; it should return an error as soon as it
	// knows the start failed.
	Start Func[C]
	// Stop brings the resource down. After it returns nil the SDK polls
	// Monitor until the resource is stopped. ErrNotRunning counts as done.
	Stop Func[C]
	// Monitor reports the resource's state at depth r.CheckLevel(). An
	// error says what is wrong: ErrNotRunning is the same as Stopped, an
	// *Error with Degraded means running with a problem, any other error
	// is a failure.
	Monitor func(ctx context.Context, r *Request[C]) (State, error)

	// ReloadAgent applies changed Reloadable parameters in place. When
	// unset but the agent only has the SDK's own reloadable parameters
	// (trace_ra, trace_file), reload-agent succeeds without doing anything.
	// Unlike start, reload-agent does not poll Monitor afterwards: its
	// result is ReloadAgent's, so a service that applies a change in the
	// background is waited for here.
	ReloadAgent Func[C]
	// Promote and Demote switch roles; the SDK then polls Monitor until
	// the new role shows. Set both or neither.
	Promote, Demote Func[C]
	// Notify handles clone notifications (r.Env.Notification()). Errors
	// are logged; Pacemaker ignores notify results, so it always succeeds.
	Notify Func[C]
	// MigrateTo and MigrateFrom perform a live migration; set both or
	// neither.
	MigrateTo, MigrateFrom Func[C]
}

// Request is one invocation of an action.
type Request[C any] struct {
	// Action is the action Pacemaker asked for. When the SDK polls Monitor
	// after a start, stop, promote or demote, Action is still that action,
	// so Monitor can tell such a check from a scheduled monitor.
	Action string
	// Config holds the decoded parameters.
	Config *C
	// Env is the raw OCF environment, for what the SDK does not decode.
	Env Env
	// Log is tagged with the resource; it writes where Pacemaker expects.
	Log *slog.Logger

	agent         string
	probe         bool
	checkLevel    int
	validationErr error
}

// ValidationErr returns what Validate reported for this invocation when
// the action runs despite it: Stop always runs (a failed stop gets the
// node fenced), and Monitor runs when Validate found something missing
// on this node (NotInstalled, InvalidArgs), because a daemon outlives the
// removal of its binary or configuration file and only Monitor can tell
// that it still runs. nil when Validate succeeded or is not set.
func (r *Request[C]) ValidationErr() error { return r.validationErr }

// IsProbe reports whether this is a probe: a monitor that Pacemaker runs
// to learn the state, with no interval. A probe on a node where the
// software is missing reports "not running" rather than an error.
func (r *Request[C]) IsProbe() bool { return r.probe }

// CheckLevel is the monitor depth requested (OCF_CHECK_LEVEL), 0 when
// unset. Agents treat it as "at least this deep".
func (r *Request[C]) CheckLevel() int { return r.checkLevel }

// StatePath returns a per-resource path under the state directory
// (HA_RSCTMP), such as "/run/resource-agents/example-db.state" for suffix
// ".state". Clone instances get their own. The directory is cleared at
// boot; the SDK creates it before start, stop, promote, demote,
// reload-agent and the migrations, but not before a monitor, which must
// read a missing directory as no state.
func (r *Request[C]) StatePath(suffix string) string {
	return filepath.Join(r.Env.StateDir(), r.agent+"-"+safeName(r.Env.Instance())+suffix)
}

// Lock takes this resource's exclusive lock, a file under the state
// directory, waiting at most until ctx ends. Pacemaker never runs two
// actions of one resource at once on a node, but an administrator's
// crm_resource --force-start beside it can; actions that must not overlap
// take the lock first and call unlock when done. The error is an *Error
// with GenericFailure when another action held the lock until ctx ended, and
// with InsufficientPrivileges when the lock file cannot be opened (a symbolic link
// planted in its place is never followed).
func (r *Request[C]) Lock(ctx context.Context) (unlock func() error, err error) {
	if err := os.MkdirAll(r.Env.StateDir(), 0o755); err != nil {
		return nil, Errorf(InsufficientPrivileges, "creating state directory: %w", err)
	}
	path := r.StatePath(".lock")
	unlock, err = process.Lock(ctx, path)
	switch {
	case errors.Is(err, process.ErrLockHeld):
		return nil, Errorf(GenericFailure, "another action of this resource held its lock until the deadline: %w", err)
	case err != nil:
		return nil, Errorf(InsufficientPrivileges, "cannot take this resource's lock %s: %w", path, err)
	}
	return unlock, nil
}

// LookPath finds a binary like exec.LookPath, but fails with NotInstalled
// (naming parameter param, if any) and honours ocf-tester's
// OCF_TESTER_FAIL_HAVE_BINARY.
func (r *Request[C]) LookPath(file, param string) (string, error) {
	fix := "install " + file
	if param != "" {
		fix = "set parameter " + param + " or install " + file
	}
	if r.Env.FailHaveBinary() {
		return "", Errorf(NotInstalled, "%s: not found (OCF_TESTER_FAIL_HAVE_BINARY)", fix)
	}
	p, err := exec.LookPath(file)
	if err != nil {
		return "", &Error{Code: NotInstalled, Reason: fix + ": not found or not executable", Err: err}
	}
	return p, nil
}

// Invocation is everything an agent run reads from its process: tests
// build one by hand and run agents in-process.
type Invocation struct {
	Args   []string // argv; Args[1] is the action, further arguments are ignored
	Env    Env
	Stdout io.Writer // meta-data and usage
	Stderr io.Writer // logs (when nothing else is configured) and the exit reason
}

// Main runs the agent for this process and returns its exit code, for
// main to pass to os.Exit.
func (a *Agent[C]) Main() int {
	return int(a.Run(context.Background(), Invocation{Args: os.Args, Env: OSEnv(), Stdout: os.Stdout, Stderr: os.Stderr}))
}

// AnyAgent is what the conformance harness drives: an *Agent of any
// configuration type.
type AnyAgent interface {
	Run(ctx context.Context, inv Invocation) Code
	// Advertised lists the actions in the meta-data, in order.
	Advertised() []string
	// CheckDeclaration reports mistakes in the declaration itself.
	CheckDeclaration() error
}

// traceParams are the SDK's own parameters, present on every agent: pcs
// allows them on every OCF agent, and making them reloadable means turning
// tracing on or off never restarts a resource.
type traceParams struct {
	RA   bool
	File string
}

func (t *traceParams) params() []Param {
	return []Param{
		Bool(&t.RA, "trace_ra", "Trace this resource's actions", Default("0"), Reloadable(),
			Long("Write a debug trace of every action of this resource to trace_file.")),
		String(&t.File, "trace_file", "Trace file", Reloadable(),
			Long("Where trace_ra writes its trace. Default: a new file per action under /var/lib/heartbeat/trace_ra/AGENT/.")),
	}
}

func (a *Agent[C]) params(c *C, t *traceParams) []Param {
	var ps []Param
	if a.Params != nil {
		ps = a.Params(c)
	}
	return append(ps, t.params()...)
}

// CheckDeclaration reports mistakes in the declaration: missing mandatory actions,
// half of a pair, invalid defaults, duplicate or dangling names, options
// that do not fit the parameter's kind (Range on a String, MinDuration on
// an Int). The conformance harness fails on them.
func (a *Agent[C]) CheckDeclaration() error {
	var errs []error
	if a.Name == "" {
		errs = append(errs, errors.New("agent has no Name"))
	}
	if a.Start == nil || a.Stop == nil || a.Monitor == nil {
		errs = append(errs, errors.New("Start, Stop and Monitor are mandatory"))
	}
	if (a.Promote == nil) != (a.Demote == nil) {
		errs = append(errs, errors.New("set both Promote and Demote or neither"))
	}
	if (a.MigrateTo == nil) != (a.MigrateFrom == nil) {
		errs = append(errs, errors.New("set both MigrateTo and MigrateFrom or neither"))
	}
	ps := a.params(new(C), new(traceParams))
	names := map[string]bool{}
	for _, p := range ps {
		if names[p.name] {
			errs = append(errs, fmt.Errorf("parameter %s declared twice", p.name))
		}
		names[p.name] = true
		for _, m := range p.misuse {
			errs = append(errs, fmt.Errorf("parameter %s: %s", p.name, m))
		}
		if p.required && p.hasDefault {
			errs = append(errs, fmt.Errorf("parameter %s is required and has a default", p.name))
		}
		if p.hasDefault {
			if err := p.apply(p.def); err != nil {
				errs = append(errs, fmt.Errorf("parameter %s: default %q: %v", p.name, p.def, err))
			}
		}
	}
	for _, p := range ps {
		if p.replacedBy != "" && !names[p.replacedBy] {
			errs = append(errs, fmt.Errorf("parameter %s is replaced with undeclared %s", p.name, p.replacedBy))
		}
	}
	return errors.Join(errs...)
}

// Advertised lists the actions the meta-data advertises, in order.
func (a *Agent[C]) Advertised() []string {
	var names []string
	for _, act := range a.actions() {
		if !slices.Contains(names, act.Name) {
			names = append(names, act.Name)
		}
	}
	return names
}

func (a *Agent[C]) implements(action string) bool {
	switch action {
	case ActionStart, ActionStop, ActionMonitor, ActionMetaData, ActionValidateAll, ActionReloadAgent:
		return true
	case ActionPromote:
		return a.Promote != nil
	case ActionDemote:
		return a.Demote != nil
	case ActionNotify:
		return a.Notify != nil
	case ActionMigrateTo:
		return a.MigrateTo != nil
	case ActionMigrateFrom:
		return a.MigrateFrom != nil
	}
	return false
}

// actions merges the SDK's defaults with the agent's overrides.
func (a *Agent[C]) actions() []Operation {
	monitors := []Operation{{Name: ActionMonitor, Timeout: 20 * time.Second, Interval: 10 * time.Second}}
	if a.Promote != nil {
		// Pacemaker needs distinct intervals per role. The unpromoted one
		// carries no role: a monitor with role Unpromoted never runs when
		// the resource is used as a plain primitive (Started).
		monitors = append(monitors, Operation{Name: ActionMonitor, Timeout: 20 * time.Second, Interval: 9 * time.Second, Role: RolePromoted})
	}
	defaults := []Operation{
		{Name: ActionStart, Timeout: 20 * time.Second},
		{Name: ActionStop, Timeout: 20 * time.Second},
	}
	defaults = append(defaults, monitors...)
	for _, name := range []string{ActionPromote, ActionDemote, ActionNotify, ActionMigrateTo, ActionMigrateFrom, ActionReloadAgent} {
		if a.implements(name) {
			t := 20 * time.Second
			if name == ActionNotify {
				t = 5 * time.Second
			}
			defaults = append(defaults, Operation{Name: name, Timeout: t})
		}
	}
	defaults = append(defaults,
		Operation{Name: ActionMetaData, Timeout: 5 * time.Second},
		Operation{Name: ActionValidateAll, Timeout: 20 * time.Second})

	var out []Operation
	for _, d := range defaults {
		overridden := slices.ContainsFunc(a.Operations, func(o Operation) bool { return o.Name == d.Name })
		switch {
		case !overridden:
			out = append(out, d)
		case !slices.ContainsFunc(out, func(o Operation) bool { return o.Name == d.Name }):
			for _, o := range a.Operations {
				if o.Name == d.Name {
					out = append(out, o)
				}
			}
		}
	}
	return out
}

// WriteMetadata writes the agent's OCF 1.1 meta-data XML.
func (a *Agent[C]) WriteMetadata(w io.Writer) error {
	return metadata{
		name: a.Name, version: a.Version, short: a.ShortDesc, long: a.LongDesc,
		params: a.params(new(C), new(traceParams)), actions: a.actions(),
	}.write(w)
}

func (a *Agent[C]) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s {%s}\n\n%s: %s\nParameters come from OCF_RESKEY_* variables; see %s meta-data.\n",
		a.Name, strings.Join(a.Advertised(), "|"), a.Name, a.ShortDesc, a.Name)
}

// Run performs the action named by inv.Args[1] and returns its exit
// status, having written any exit reason to inv.Stderr. It never panics: a
// panic in the agent becomes GenericFailure with a reason.
func (a *Agent[C]) Run(ctx context.Context, inv Invocation) (code Code) {
	if inv.Stdout == nil {
		inv.Stdout = io.Discard
	}
	if inv.Stderr == nil {
		inv.Stderr = io.Discard
	}
	action := ""
	if len(inv.Args) > 1 {
		action = inv.Args[1]
	}
	switch {
	case action == "":
		a.usage(inv.Stderr)
		return InvalidArgs
	case action == "--help" || action == "-h" || action == "help" || action == "usage":
		a.usage(inv.Stdout)
		return Success
	case action == ActionMetaData:
		// Always 0 and always XML: Pacemaker caches it and pcs depends on it.
		if err := a.WriteMetadata(inv.Stdout); err != nil {
			fmt.Fprintf(inv.Stderr, "%s: writing meta-data: %v\n", a.Name, err)
		}
		return Success
	case !a.implements(action):
		a.usage(inv.Stderr)
		writeReason(inv, fmt.Sprintf("action %s is not implemented by %s", strings.ReplaceAll(action, "\n", " "), a.Name))
		return Unimplemented
	}

	cfg, trace := new(C), new(traceParams)
	params := a.params(cfg, trace)
	// Tracing must be known before the logger exists, so read it raw; a
	// malformed value is reported by decoding below.
	traceRA, _ := ParseBool(inv.Env.Get("OCF_RESKEY_trace_ra"))
	logs := newLogSetup(inv.Env, a.Name, action, inv.Stderr, traceRA, inv.Env.Get("OCF_RESKEY_trace_file"))
	log, closeLog := logs.logger()
	defer closeLog()
	log = log.With("action", action)

	interval := inv.Env.Interval()
	level, _ := inv.Env.CheckLevel()
	r := &Request[C]{Action: action, Config: cfg, Env: inv.Env, Log: log, agent: a.Name,
		probe: action == ActionMonitor && interval == 0, checkLevel: level}

	ctx, cancel := context.WithDeadline(ctx, time.Now().Add(deadline(inv.Env.Timeout())))
	defer cancel()

	start := time.Now()
	if logs.traceFile != "" {
		log.Debug("invocation", "env", traceEnv(inv.Env, params))
	}
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic", "panic", p)
			writeReason(inv, fmt.Sprintf("internal error in %s %s: %v", a.Name, action, p))
			code = GenericFailure
		}
		log.Debug("done", "rc", int(code), "elapsed", time.Since(start))
	}()

	code, err := a.dispatch(ctx, r, params)
	// The bare sentinel says nothing a log reader needs; a wrapped one
	// carries a reason.
	if err != nil && err != ErrNotRunning {

		level := slog.LevelError
		if code == Success || code == NotRunning || code == Degraded || code == DegradedPromoted {
			level = slog.LevelInfo
		}
		// The log keeps the whole reason; the exit reason is cut to
		// what Pacemaker keeps.
		log.Log(ctx, level, "result", "rc", code.String(), "reason", OneLine(err.Error(), 0))
		// A probe finding nothing is the normal case, not worth a reason.
		if code != Success && !(code == NotRunning && r.probe) {
			writeReason(inv, ReasonOf(err))
		}
	}
	return code
}

// deadline leaves a margin before Pacemaker's timeout, which would SIGKILL
// the agent's whole process group: a tenth, between 0.5 and 5 seconds, and
// never more than half.
func deadline(timeout time.Duration) time.Duration {
	margin := min(max(timeout/10, 500*time.Millisecond), 5*time.Second, timeout/2)
	return timeout - margin
}

func writeReason(inv Invocation, reason string) {
	prefix := inv.Env.Get("OCF_EXIT_REASON_PREFIX")
	if prefix == "" {
		prefix = "ocf-exit-reason:"
	}
	fmt.Fprintf(inv.Stderr, "%s%s\n", prefix, OneLine(reason, MaxReason))
}

// traceEnv lists the OCF variables of an invocation for a trace, with
// private parameters hidden.
func traceEnv(env Env, params []Param) []string {
	var out []string
	for _, p := range params {
		if v, ok := env.Param(p.name); ok {
			if p.private {
				v = "(hidden)"
			}
			out = append(out, p.name+"="+v)
		}
	}
	for _, k := range []string{"OCF_RESOURCE_INSTANCE", "OCF_CHECK_LEVEL", "OCF_RESKEY_CRM_meta_interval", "OCF_RESKEY_CRM_meta_timeout"} {
		if v, ok := env.Lookup(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}
