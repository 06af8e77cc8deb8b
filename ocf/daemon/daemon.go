package daemon

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// Daemon declares a long-running program that an agent of configuration
// type C manages. Its methods Start, Stop, Monitor, ReloadAgent and
// Validate have the signatures of the ocf.Agent fields of the same names;
// Agent fills those fields in, and an agent overrides any of them by
// setting its own (calling the Daemon's method inside, if it wants).
type Daemon[C any] struct {
	// Name names the daemon in exit reasons and logs, such as "consul".
	Name string
	// Command builds the command line from the request; it is called by
	// every action (it must be cheap: no network). Its errors are the
	// agent's validation errors (use ocf.Errorf with NotInstalled for a
	// missing binary, as Request.LookPath does): Monitor and Stop still
	// find and end a running daemon when it fails, by the identity
	// recorded at start. With an error, return what could be built
	// anyway, PIDFile above all when the agent sets its own, so that they
	// find it.
	Command func(ctx context.Context, r *ocf.Request[C]) (Command, error)
	// Prepare, when set, runs in Start before the daemon is spawned: write
	// its configuration, check it with the daemon's own check mode, free
	// or check ports. It does not run when the daemon already runs. cmd
	// is the command line as Resolve returns it (Path absolute, PIDFile
	// and LogFile filled in).
	Prepare func(ctx context.Context, r *ocf.Request[C], cmd Command) error
	// Ready, when set, tells whether the started daemon serves: Start
	// returns once it succeeds, and Monitor fails while it does not. nil
	// means a running process is enough. See TCP, HTTP and Unix.
	Ready Check[C]
	// Deep, when set, is the extra check of monitors at OCF_CHECK_LEVEL
	// 10 and above. Return an ocf.Errorf(ocf.Degraded, ...) for problems
	// that a restart would not fix.
	Deep Check[C]
	// Reload, when set, applies changed reloadable parameters to the
	// running daemon (reload-agent); see Signal. It is not called when
	// the daemon is not running: the next start uses the new parameters.
	// reload-agent returns when Reload does, without polling Monitor: a
	// daemon that reloads in the background after a signal (nginx
	// replaces its workers) is waited for in Reload, after Signal.
	Reload Check[C]
	// BeforeStop, when set, runs before the stop signal, with at most
	// half of the time left (a cluster leave, a drain). Its error is
	// logged, and the stop goes on.
	BeforeStop Check[C]
	// StopSignal asks the daemon to exit; SIGTERM when 0.
	StopSignal syscall.Signal
	// Grace is how long the daemon has to exit after StopSignal before
	// SIGKILL; 0 means half the time left of the stop operation. It is
	// never more than that half.
	Grace time.Duration
	// Alone makes Stop signal only the daemon's own process, not its
	// process group (the default, which also ends the helpers it forked).
	Alone bool
}

// Command is how to run the daemon.
type Command struct {
	// Path is the executable: an absolute path, or a name looked up in
	// the agent's PATH by Validate (reported against Param when missing).
	Path string
	// Param names the parameter that chose Path, for exit reasons.
	Param string
	// Args are the arguments after argv[0].
	Args []string
	// Env is the daemon's whole environment, "KEY=value"; nil gives only
	// process.DefaultPath. The agent's own environment never reaches the
	// daemon (it holds every OCF_RESKEY_* parameter).
	Env []string
	// Dir is the working directory, "/" when empty.
	Dir string
	// User and Group, when set, are who the daemon runs as (names or
	// numeric ids; Group defaults to User's primary group).
	User, Group string
	// LogFile receives the daemon's stdout and stderr, appended; its
	// directory is created (0750) when missing. Empty: the request's
	// state path with suffix ".log". Start quotes the last line written
	// there when the daemon exits before it is ready.
	LogFile string
	// PIDFile is where the daemon's pid is kept; empty: the request's
	// state path with suffix ".pid". Its Identity is kept beside it.
	PIDFile string
}

// Process is a running daemon, handed to checks.
type Process struct {
	PID int
	// Command is the command line of this request's parameters, as
	// Resolve returns it (in Reload: the new parameters'), not
	// necessarily the one the daemon was started with.
	Command Command
}

// Check examines or acts on a running daemon. A nil error means success.
type Check[C any] func(ctx context.Context, r *ocf.Request[C], p Process) error

// Agent returns a with every lifecycle action the daemon supplies and the
// agent left unset: Start, Stop, Monitor, ReloadAgent (when Reload is set)
// and Validate (the agent's own Validate, if any, then the command line).
// Exclusive is set: actions that change the daemon never overlap.
func (d *Daemon[C]) Agent(a *ocf.Agent[C]) *ocf.Agent[C] {
	if a.Start == nil {
		a.Start = d.Start
	}
	if a.Stop == nil {
		a.Stop = d.Stop
	}
	if a.Monitor == nil {
		a.Monitor = d.Monitor
	}
	if a.ReloadAgent == nil && d.Reload != nil {
		a.ReloadAgent = d.ReloadAgent
	}
	own := a.Validate
	a.Validate = func(ctx context.Context, r *ocf.Request[C]) error {
		if own != nil {
			if err := own(ctx, r); err != nil {
				return err
			}
		}
		return d.Validate(ctx, r)
	}
	a.Exclusive = true
	return a
}

// Validate checks that the command line builds on this node: the
// executable exists, the user and group resolve.
func (d *Daemon[C]) Validate(ctx context.Context, r *ocf.Request[C]) error {
	cmd, err := d.command(ctx, r)
	if err != nil {
		return err
	}
	_, err = credential(ctx, cmd.User, cmd.Group)
	return err
}

// Resolve returns the command line for the request, with Path resolved
// to an absolute path and PIDFile and LogFile filled in: what an agent
// needs outside the checks (a configuration check with the same binary,
// say). Its errors are those of Validate, but for the user and group,
// which it does not look up.
func (d *Daemon[C]) Resolve(ctx context.Context, r *ocf.Request[C]) (Command, error) {
	return d.command(ctx, r)
}

// command builds the command line and resolves its path. The user and
// group are looked up only by Validate and Start, which need them: that
// lookup may ask getent, and monitors run every few seconds.
func (d *Daemon[C]) command(ctx context.Context, r *ocf.Request[C]) (Command, error) {
	cmd, err := d.Command(ctx, r)
	if cmd.PIDFile == "" {
		cmd.PIDFile = r.StatePath(".pid")
	}
	if cmd.LogFile == "" {
		cmd.LogFile = r.StatePath(".log")
	}
	if err != nil {
		return cmd, err
	}
	p, err := r.LookPath(cmd.Path, cmd.Param)
	if err != nil {
		return cmd, err
	}
	if cmd.Path, err = filepath.Abs(p); err != nil {
		return cmd, ocf.Errorf(ocf.NotInstalled, "%s: %w", p, err)
	}
	return cmd, nil
}

// credential resolves user and group names or ids, NSS included.
func credential(ctx context.Context, name, group string) (*syscall.Credential, error) {
	cred, err := process.LookupCredential(ctx, name, group)
	switch {
	case errors.Is(err, process.ErrUnknownUser):
		return nil, ocf.Errorf(ocf.NotInstalled, "user: create %q on this node or fix the parameter: no such user", name)
	case errors.Is(err, process.ErrUnknownGroup):
		return nil, ocf.Errorf(ocf.NotInstalled, "group: create %q on this node or fix the parameter: no such group", group)
	case err != nil:
		return nil, ocf.Errorf(ocf.GenericFailure, "looking up user %q and group %q: %w", name, group, err)
	}
	return cred, nil
}

// status finds the daemon. With the command line unknown (a failed
// validation), the identity recorded at start decides alone.
func (d *Daemon[C]) status(cmd Command) (process.State, int, error) {
	var match process.Matcher
	switch {
	case filepath.IsAbs(cmd.Path):
		match = process.MatchExecutable(cmd.Path)
	case cmd.Path != "":
		base := filepath.Base(cmd.Path)
		match = process.MatchCmdline(func(argv []string) bool { return filepath.Base(argv[0]) == base })
	}
	return process.Status(cmd.PIDFile, match)
}

// Start starts the daemon unless it runs, and returns once Ready succeeds.
// What is left of a daemon that died (its workers, which may hold its
// ports) is ended first, as Stop does. It fails at once, with the last
// line the daemon wrote, when the daemon exits first.
func (d *Daemon[C]) Start(ctx context.Context, r *ocf.Request[C]) error {
	cmd, err := d.command(ctx, r)
	if err != nil {
		return err
	}
	st, pid, err := d.status(cmd)
	if err != nil {
		return ocf.Errorf(ocf.GenericFailure, "%s: pid file %s: %w", d.Name, cmd.PIDFile, err)
	}
	if st == process.Running {
		r.Log.Info("already running", "pid", pid)
		return d.awaitReady(ctx, r, Process{PID: pid, Command: cmd}, -1)
	}
	// A daemon killed with SIGKILL may leave workers holding its ports,
	// and a start may come without a stop first (a probe after a cleanup
	// reports the daemon stopped): end them while the pid file still
	// names their group, which the new daemon's replaces.
	if err := d.endLeftovers(ctx, r, cmd, pid); err != nil {
		return err
	}
	if d.Prepare != nil {
		if err := d.Prepare(ctx, r, cmd); err != nil {
			return err
		}
	}
	cred, err := credential(ctx, cmd.User, cmd.Group)
	if err != nil {
		return err
	}
	for _, dir := range []string{filepath.Dir(cmd.LogFile), filepath.Dir(cmd.PIDFile)} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return ocf.Errorf(ocf.InsufficientPrivileges, "%s: creating %s: %w", d.Name, dir, err)
		}
	}
	offset := int64(-1)
	if info, err := os.Stat(cmd.LogFile); err == nil {
		offset = info.Size()
	} else if errors.Is(err, fs.ErrNotExist) {
		offset = 0
	}
	pid, err = process.StartDaemon(ctx, process.Daemon{
		Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Dir: cmd.Dir,
		PIDFile: cmd.PIDFile, LogFile: cmd.LogFile, Credential: cred,
	})
	if err != nil {
		return ocf.Errorf(ocf.GenericFailure, "%s did not start: %w", d.Name, err)
	}
	r.Log.Info("started", "daemon", d.Name, "pid", pid, "log", cmd.LogFile)
	return d.awaitReady(ctx, r, Process{PID: pid, Command: cmd}, offset)
}

// Poll intervals of the wait after spawning: liveness is cheap and
// checked often, so a daemon that dies is reported within tens of
// milliseconds; readiness checks back off up to readyMax.
const (
	alivePoll = 10 * time.Millisecond
	readyMin  = 20 * time.Millisecond
	readyMax  = 500 * time.Millisecond
)

// awaitReady waits until Ready succeeds, failing at once when the daemon
// exits, also while a readiness attempt is in flight (a daemon that dies
// may leave a connection hanging). offset is where the daemon's output of
// this run starts in its log file (-1: unknown).
func (d *Daemon[C]) awaitReady(ctx context.Context, r *ocf.Request[C], p Process, offset int64) error {
	id, _ := process.ReadIdentity(p.Command.PIDFile, p.PID)
	if d.Ready == nil {
		if !d.alive(p.PID, id) {
			return d.exited(p.Command, offset)
		}
		return nil
	}
	tick := time.NewTicker(alivePoll)
	defer tick.Stop()
	wait := readyMin
	var last error
	for {
		actx, cancel := context.WithCancel(ctx)
		result := make(chan error, 1)
		go func() { result <- d.Ready(actx, r, p) }()
		var err error
	attempt:
		for {
			select {
			case err = <-result:
				break attempt
			case <-tick.C:
				if !d.alive(p.PID, id) {
					// Not waiting for the attempt: a check that
					// ignores its context must not hold the
					// failure back. It ends with the agent.
					cancel()
					return d.exited(p.Command, offset)
				}
			}
		}
		cancel()
		switch {
		case err == nil:
			return nil
		case ocf.IsPermanent(err):
			return err
		case ctx.Err() == nil || last == nil:
			last = err
		}
		pause := time.NewTimer(wait)
		wait = min(wait*2, readyMax)
	pausing:
		for {
			select {
			case <-ctx.Done():
				pause.Stop()
				if !d.alive(p.PID, id) {
					return d.exited(p.Command, offset)
				}
				return ocf.Errorf(ocf.GenericFailure, "%s runs but is not ready before the start timeout: %v", d.Name, last)
			case <-pause.C:
				break pausing
			case <-tick.C:
				if !d.alive(p.PID, id) {
					pause.Stop()
					return d.exited(p.Command, offset)
				}
			}
		}
	}
}

func (d *Daemon[C]) alive(pid int, id process.Identity) bool {
	if id.PID != 0 {
		same, err := id.Same()
		return same || err != nil
	}
	alive, err := process.Alive(pid)
	return alive || err != nil
}

// exited is the start failure of a daemon that exited: permanent, with
// its last words.
func (d *Daemon[C]) exited(cmd Command, offset int64) error {
	last := LastWords(cmd.LogFile, offset)
	if last == "" {
		last = "no output; see " + cmd.LogFile
	}
	return ocf.Permanent(ocf.Errorf(ocf.GenericFailure, "%s exited at start: %s", d.Name, last))
}

// maxTail bounds what LastLine reads from the end of a log file.
const maxTail = 8 << 10

// LastWords returns what a daemon said last, for an exit reason: among
// the lines written to the file at path after byte offset (0: from the
// start; negative: the last 8 KiB whatever they are), the last one that
// reads like an error (it names an error, a failure, a fatal or alert
// condition, or a panic), else the last non-blank one; made safe by
// ocf.OneLine. Daemons often end with a line of no use ("exit code 1")
// after the one that says why. It returns "" when there is nothing or the
// file cannot be read.
func LastWords(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return ""
	}
	from := max(info.Size()-maxTail, offset, 0)
	buf, err := io.ReadAll(io.NewSectionReader(f, from, info.Size()-from))
	if err != nil {
		return ""
	}
	lines := strings.Split(string(buf), "\n")
	last := ""
	for i := len(lines) - 1; i >= 0; i-- {
		line := trimLogPrefix(ocf.OneLine(lines[i], 0))
		if line == "" {
			continue
		}
		if last == "" {
			last = line
		}
		if soundsLikeError(line) {
			return line
		}
	}
	return last
}

// Log line prefixes that say nothing an administrator needs in a reason
// of 128 bytes: a time stamp, a level, a process tag (HAProxy's "(123) :",
// nginx's "123#0:"). Compiled on first use: only a failed start reads a
// log, and every monitor loads this package.
var (
	stampPrefix = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?\s+`)
	})
	levelPrefix = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^\[[A-Za-z]+\]\s*(\(\d+\)\s*:\s*|\d+#\d+:\s*)?`)
	})
)

func trimLogPrefix(line string) string {
	line = stampPrefix().ReplaceAllString(line, "")
	return levelPrefix().ReplaceAllString(line, "")
}

// errorWords mark a line that says why a daemon failed.
var errorWords = []string{"error", "fatal", "alert", "emerg", "crit", "panic", "fail", "cannot", "can't", "unable", "denied", "refus", "invalid", "in use"}

func soundsLikeError(line string) bool {
	lower := strings.ToLower(line)
	for _, w := range errorWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// Monitor reports the daemon stopped, running, or failed: running needs
// the recorded process alive and, when set, Ready to succeed; Deep runs at
// depth 10 and above.
func (d *Daemon[C]) Monitor(ctx context.Context, r *ocf.Request[C]) (ocf.State, error) {
	cmd, _ := d.command(ctx, r)
	st, pid, err := d.status(cmd)
	switch {
	case err != nil:
		return ocf.Stopped, ocf.Errorf(ocf.GenericFailure, "%s: cannot tell whether it runs: pid file %s: %w", d.Name, cmd.PIDFile, err)
	case st != process.Running:
		return ocf.Stopped, nil
	}
	p := Process{PID: pid, Command: cmd}
	if d.Ready != nil {
		if err := d.Ready(ctx, r, p); err != nil {
			if ocf.CodeOf(err) != ocf.GenericFailure {
				return ocf.Running, err
			}
			return ocf.Running, ocf.Errorf(ocf.GenericFailure, "%s (pid %d) runs but does not serve: %w", d.Name, pid, err)
		}
	}
	if d.Deep != nil && r.CheckLevel() >= 10 {
		return ocf.Running, d.Deep(ctx, r, p)
	}
	return ocf.Running, nil
}

// Stop ends the daemon: BeforeStop, then StopSignal, then SIGKILL once
// the grace period is over, always before the operation's deadline, and
// never to a process that is not the one started (see
// process.StopOptions.Identity). It succeeds when nothing runs.
func (d *Daemon[C]) Stop(ctx context.Context, r *ocf.Request[C]) error {
	cmd, _ := d.command(ctx, r)
	st, pid, err := d.status(cmd)
	if err != nil {
		return ocf.Errorf(ocf.GenericFailure, "%s: cannot tell whether it runs: pid file %s: %w", d.Name, cmd.PIDFile, err)
	}
	if st != process.Running {
		if err := d.endLeftovers(ctx, r, cmd, pid); err != nil {
			return err
		}
		removePIDFiles(cmd.PIDFile)
		return nil
	}
	p := Process{PID: pid, Command: cmd}
	if d.BeforeStop != nil {
		bctx, cancel := halfOf(ctx)
		err := d.BeforeStop(bctx, r, p)
		cancel()
		if err != nil {
			r.Log.Warn("before stop", "daemon", d.Name, "err", err)
		}
	}
	opts := process.StopOptions{Signal: d.StopSignal, Grace: d.Grace}
	opts.Identity, _ = process.ReadIdentity(cmd.PIDFile, pid)
	stop := process.StopGroup
	if d.Alone {
		stop = process.Stop
	}
	if err := stop(ctx, pid, opts); err != nil {
		return ocf.Errorf(ocf.GenericFailure, "%s (pid %d) did not stop: %w", d.Name, pid, err)
	}
	removePIDFiles(cmd.PIDFile)
	r.Log.Info("stopped", "daemon", d.Name, "pid", pid)
	return nil
}

// endLeftovers ends what is left of the daemon's process group when the
// daemon itself has died (killed with SIGKILL, its workers may go on
// holding its ports, and a new start would fail on them). Only with the
// identity recorded at start: while members of the group live, its number
// cannot be given to another process, and a new process with that number
// has another identity, so nothing else is ever signalled.
func (d *Daemon[C]) endLeftovers(ctx context.Context, r *ocf.Request[C], cmd Command, pid int) error {
	if d.Alone || pid == 0 {
		return nil
	}
	id, ok := process.ReadIdentity(cmd.PIDFile, pid)
	if !ok {
		return nil
	}
	opts := process.StopOptions{Signal: d.StopSignal, Grace: d.Grace, Identity: id}
	if err := process.StopGroup(ctx, pid, opts); err != nil {
		return ocf.Errorf(ocf.GenericFailure, "%s: processes left by the dead daemon (group %d) did not stop: %w", d.Name, pid, err)
	}
	return nil
}

func removePIDFiles(pidfile string) {
	_ = os.Remove(pidfile)
	_ = os.Remove(pidfile + process.IdentityFileSuffix)
}

// halfOf returns a context that ends halfway to ctx's deadline.
func halfOf(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/2))
	}
	return context.WithCancel(ctx)
}

// ReloadAgent runs Reload on the running daemon; when it does not run,
// there is nothing to do (the next start uses the new parameters).
func (d *Daemon[C]) ReloadAgent(ctx context.Context, r *ocf.Request[C]) error {
	cmd, err := d.command(ctx, r)
	if err != nil {
		return err
	}
	st, pid, err := d.status(cmd)
	if err != nil {
		return ocf.Errorf(ocf.GenericFailure, "%s: cannot tell whether it runs: pid file %s: %w", d.Name, cmd.PIDFile, err)
	}
	if st != process.Running {
		r.Log.Info("not running; the new parameters apply at the next start", "daemon", d.Name)
		return nil
	}
	if d.Reload == nil {
		return nil
	}
	return d.Reload(ctx, r, Process{PID: pid, Command: cmd})
}

// Signal returns a Check that sends sig to the daemon, such as SIGHUP for
// a Reload, only if it is still the process that was started.
func Signal[C any](sig syscall.Signal) Check[C] {
	return func(ctx context.Context, r *ocf.Request[C], p Process) error {
		if id, ok := process.ReadIdentity(p.Command.PIDFile, p.PID); ok {
			if same, err := id.Same(); err == nil && !same {
				return ocf.Errorf(ocf.GenericFailure, "%s (pid %d) exited before signal %v", p.Command.Path, p.PID, sig)
			}
		}
		if err := syscall.Kill(p.PID, sig); err != nil {
			return ocf.Errorf(ocf.GenericFailure, "signal %v to pid %d: %w", sig, p.PID, err)
		}
		return nil
	}
}
