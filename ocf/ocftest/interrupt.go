package ocftest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
)

// How pacemaker-execd runs an agent, which the runners of NewExecRunner
// and NewSelfRunner and Interrupt reproduce (Pacemaker's
// lib/services/services_linux.c and lib/common/mainloop.c):
//
//   - The agent's child calls setpgid(0, 0) before exec: the agent leads a
//     process group of its own, which everything it forks joins unless it
//     leaves it (daemons started by the SDK start a new session).
//   - When an operation outlives its timeout, execd sends SIGKILL, with no
//     SIGTERM first, to that whole group: kill(-pid, SIGKILL). Only for an
//     operation with on-fail=block does it kill the agent's process alone,
//     leaving the rest of the group running. It sends the kill once (5 s
//     later it only logs an agent that will not die), and records the
//     operation as failed (OCF_ERR_GENERIC, status "Timed Out").

// serveVar marks the environment of a test binary that NewSelfRunner
// starts to serve as the agent (ServeAgent). It reaches the agent only:
// the daemons the SDK starts get an environment of their own.
const serveVar = "OCFTEST_SERVE_AGENT"

// NewExecRunner prepares invocations of the agent executable at path with
// cfg, each in a process of its own as pacemaker-execd runs agents: argv
// is path and the action, the environment is the one NewRunner gives
// (Runner.Env, with the extra variables of each run) and the test's PATH
// unless that sets one (execd's children inherit its PATH), the working
// directory is /, and the process leads a new process group. Run returns
// the exit status as the Code (NotInstalled when path does not exist,
// InsufficientPrivileges when it may not be executed) and, like execd, kills
// the process group when the run outlives OCF_RESKEY_CRM_meta_timeout,
// returning GenericFailure then. Interrupt works only on such runners.
func NewExecRunner(t testing.TB, path string, cfg Config) *Runner {
	t.Helper()
	return &Runner{path: path, env: environment(t, cfg)}
}

// NewSelfRunner is NewExecRunner for the running test binary itself,
// which serves as the agent: its TestMain must call ServeAgent first.
// Running the test binary rather than a separately built agent costs no
// build, and keeps to one executable the agent's processes and the
// companions it starts by running os.Executable(), which an in-process
// Runner of the same test finds as its own.
//
// It fails the test when the test binary cannot name its own file.
func NewSelfRunner(t testing.TB, cfg Config) *Runner {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("the test binary cannot serve as the agent: %v", err)
	}
	r := NewExecRunner(t, self, cfg)
	r.self = true
	return r
}

// ServeAgent makes a test binary serve as agent a in the processes that a
// runner of NewSelfRunner starts: call it first thing in TestMain, and
// exit with its code when it served:
//
//	func TestMain(m *testing.M) {
//		if code, ok := ocftest.ServeAgent(myagent.New()); ok {
//			os.Exit(code)
//		}
//		os.Exit(m.Run())
//	}
//
// Return values:
//   - (code, true): this process was started by such a runner; it ran the
//     action named by os.Args[1] with the process's environment and
//     streams, and code is the agent's exit status.
//   - (0, false): any other process (the test binary running its tests,
//     or a companion the agent started); nothing was done.
func ServeAgent(a ocf.AnyAgent) (int, bool) {
	if os.Getenv(serveVar) != "1" {
		return 0, false
	}
	code := a.Run(context.Background(), ocf.Invocation{Args: os.Args, Env: ocf.OSEnv(), Stdout: os.Stdout, Stderr: os.Stderr})
	return int(code), true
}

// ErrNotInterrupted is the error of Interrupt when the action ended by
// itself before the point of interruption came.
var ErrNotInterrupted = errors.New("the action ended before the point of interruption")

// Interruption is an action killed partway through, as pacemaker-execd
// kills an agent whose operation outlived its timeout.
type Interruption struct {
	// Action is the action to run, Extra variables on top of the
	// runner's, as for Runner.Run.
	Action string
	Extra  map[string]string
	// At reports whether the point of interruption has come. It is
	// called every 10 ms from the moment the agent is started, and never
	// after it returned true. A condition the agent's progress makes
	// true (a pid file written: Exists; a stop signal pending for the
	// service: SignalPending; a registration seen) makes the
	// test deterministic; After is a fixed delay.
	At func() bool
	// AgentOnly kills the agent's process alone, as execd does for an
	// operation with on-fail=block; by default the agent's whole process
	// group is killed, as execd does otherwise.
	AgentOnly bool
}

// Interrupt runs in.Action as r runs actions (r must come from
// NewExecRunner or NewSelfRunner), sends SIGKILL to the agent's process
// group (or to the agent alone, with in.AgentOnly) as soon as in.At
// reports true, and returns once the agent has exited. The test then runs
// what Pacemaker runs after a timeout (a probe, stop, start) with r or
// with an in-process Runner of the same state directory.
//
// Return values:
//   - (res, nil): the agent was killed at the point; res holds what it
//     printed until then, and Code is GenericFailure, the result Pacemaker
//     records for a timed-out operation.
//   - (res, ErrNotInterrupted): the action ended by itself before the
//     point came; res is its whole result, as Run returns it.
//   - (Result{}, err) with errors.Is(err, ctx.Err()): ctx ended first;
//     the agent's process group was killed.
//   - (Result{}, err): r runs its agent in-process, or the executable
//     could not be started.
//
// The operation timeout that Run applies does not apply here: ctx bounds
// the wait for the point.
func (r *Runner) Interrupt(ctx context.Context, in Interruption) (Result, error) {
	if r.path == "" {
		return Result{}, errors.New("interrupt: the runner runs its agent in-process; use NewExecRunner or NewSelfRunner")
	}
	if in.At == nil {
		return Result{}, errors.New("interrupt: no point of interruption (Interruption.At)")
	}
	env := r.actionEnv(in.Extra)
	a, err := r.startProcess(env, in.Action)
	if err != nil {
		return Result{}, fmt.Errorf("interrupt: %w", err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-a.done:
			return a.result(env), ErrNotInterrupted
		case <-ctx.Done():
			a.kill(false)
			return Result{}, fmt.Errorf("interrupt %s: %w", in.Action, ctx.Err())
		case <-tick.C:
			if !in.At() {
				continue
			}
			if !a.kill(in.AgentOnly) {
				// It exited between the last look and the kill.
				return a.result(env), ErrNotInterrupted
			}
			res := a.result(env)
			res.Code = ocf.GenericFailure
			return res, nil
		}
	}
}

// Interrupted is Interrupt for a test that needs the kill: it fails t at
// once (t.Fatal, with what the agent wrote to stderr) unless r's agent
// was killed at in.At, and otherwise returns the Result Interrupt gives.
func Interrupted(t testing.TB, ctx context.Context, r *Runner, in Interruption) Result {
	t.Helper()
	res, err := r.Interrupt(ctx, in)
	if err != nil {
		t.Fatalf("%s not interrupted: %v\n%s", in.Action, err, res.Stderr)
	}
	return res
}

// After returns a point of interruption that comes d after After is
// called.
func After(d time.Duration) func() bool {
	at := time.Now().Add(d)
	return func() bool { return !time.Now().Before(at) }
}

// Exists returns a point of interruption that comes when path exists,
// such as the pid file an agent writes once the service's process runs.
func Exists(path string) func() bool {
	return func() bool {
		_, err := os.Stat(path)
		return err == nil
	}
}

// SignalPending returns a point of interruption that comes when signal
// sig is pending for process pid (/proc/PID/status, SigPnd or ShdPnd):
// with the service's process stopped (SIGSTOP), the moment the agent
// asked it to end and waits for it, whatever the service's own pace.
func SignalPending(pid int, sig syscall.Signal) func() bool {
	bit := uint64(1) << (uint(sig) - 1)
	return func() bool {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return false
		}
		for _, line := range strings.Split(string(data), "\n") {
			name, value, ok := strings.Cut(line, ":")
			if !ok || (name != "ShdPnd" && name != "SigPnd") {
				continue
			}
			if mask, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64); err == nil && mask&bit != 0 {
				return true
			}
		}
		return false
	}
}

// runProcess runs action to its end, or kills its process group at the
// operation timeout in env, as execd does.
func (r *Runner) runProcess(env map[string]string, action string) Result {
	a, err := r.startProcess(env, action)
	if err != nil {
		code := ocf.GenericFailure
		switch {
		case errors.Is(err, fs.ErrNotExist):
			code = ocf.NotInstalled
		case errors.Is(err, fs.ErrPermission):
			code = ocf.InsufficientPrivileges
		}
		return Result{Code: code, Reason: err.Error(), Stderr: err.Error()}
	}
	timeout := 20 * time.Second
	if ms, err := strconv.Atoi(env["OCF_RESKEY_CRM_meta_timeout"]); err == nil && ms > 0 {
		timeout = time.Duration(ms) * time.Millisecond
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-a.done:
		return a.result(env)
	case <-timer.C:
		a.kill(false)
		res := a.result(env)
		res.Code = ocf.GenericFailure
		return res
	}
}

// agentProcess is an agent running as a process of its own.
type agentProcess struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{} // closed once cmd.Wait returned
}

// startProcess starts r's executable for action with exactly env (and the
// mark that makes a test binary serve, for NewSelfRunner) in a new process
// group. It runs the command itself rather than through process.Run,
// which could neither kill it at a chosen point nor spare the rest of its
// group.
func (r *Runner) startProcess(env map[string]string, action string) (*agentProcess, error) {
	a := &agentProcess{done: make(chan struct{})}
	a.cmd = exec.Command(r.path, action)
	a.cmd.Env = envList(env)
	if _, ok := env["PATH"]; !ok {
		// execd's children inherit its environment, PATH included, and
		// agents look their tools up in it (an in-process agent uses the
		// test's own).
		a.cmd.Env = append(a.cmd.Env, "PATH="+os.Getenv("PATH"))
	}
	if r.self {
		a.cmd.Env = append(a.cmd.Env, serveVar+"=1")
	}
	a.cmd.Dir = "/"
	a.cmd.Stdout, a.cmd.Stderr = &a.stdout, &a.stderr
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A process left in the group after an agent-only kill, or a daemon
	// that kept the agent's output open, must not keep Wait waiting.
	a.cmd.WaitDelay = time.Second
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		a.cmd.Wait()
		close(a.done)
	}()
	return a, nil
}

// kill sends SIGKILL to the agent's process group, or to the agent alone,
// and waits for the agent to exit. It returns false when the agent had
// already exited by itself.
func (a *agentProcess) kill(agentOnly bool) bool {
	select {
	case <-a.done:
		return false
	default:
	}
	// The group's id is the agent's pid (Setpgid). Only in the instant
	// between the agent's own exit and this kill could another process
	// have taken that pid: a risk a test can bear.
	pid := a.cmd.Process.Pid
	if agentOnly {
		syscall.Kill(pid, syscall.SIGKILL)
	} else {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	<-a.done
	ws, ok := a.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return !ok || ws.Signaled()
}

// result is the Result of the agent, which has exited.
func (a *agentProcess) result(env map[string]string) Result {
	code := ocf.Code(a.cmd.ProcessState.ExitCode())
	if code < 0 {
		// A signal ended it: execd reports OCF_ERR_GENERIC.
		code = ocf.GenericFailure
	}
	return result(env, code, a.stdout.String(), a.stderr.String())
}

// Recover runs, with r, what Pacemaker runs after an interrupted action
// (or a node crash in the middle of one), and reports on t every step
// that would cost the resource or the node:
//
//   - a probe, which must return one of probeWant (Success or NotRunning
//     when the agent can tell a whole start or stop from a partial one;
//     GenericFailure, which makes Pacemaker stop the resource, for what
//     it left half done);
//   - stop, which must succeed (a failed stop fences the node), and a
//     probe after it, which must return NotRunning;
//   - stopped, when not nil, which checks that the stop left nothing
//     behind that the next start could trip on (processes, containers,
//     registrations, sockets, files);
//   - start, which must succeed, and a recurring monitor, which must
//     return Success.
//
// It stops at the first failed step, with t.Fatalf, and leaves the
// resource started otherwise.
func Recover(t testing.TB, r *Runner, probeWant []ocf.Code, stopped func()) {
	t.Helper()
	step := func(name, action string, extra map[string]string, want ...ocf.Code) {
		t.Helper()
		got := r.Run(action, extra)
		t.Logf("after the interruption, %s = %v %q", name, got.Code, got.Reason)
		if !slices.Contains(want, got.Code) {
			t.Fatalf("after the interruption, %s = %v %q, want %v\n%s", name, got.Code, got.Reason, want, got.Stderr)
		}
	}
	step("probe", ocf.ActionMonitor, probe, probeWant...)
	step("stop", ocf.ActionStop, nil, ocf.Success)
	step("probe after stop", ocf.ActionMonitor, probe, ocf.NotRunning)
	if stopped != nil {
		stopped()
		if t.Failed() {
			t.FailNow()
		}
	}
	step("start", ocf.ActionStart, nil, ocf.Success)
	step("monitor after start", ocf.ActionMonitor, recurring, ocf.Success)
}
