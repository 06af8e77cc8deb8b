package ocftest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/process"
)

func TestMain(m *testing.M) {
	if code, ok := ServeAgent(slowAgent()); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

type slowConfig struct {
	Dir  string
	Hang bool
}

// slowAgent's start leaves a helper (a sleep) in the agent's process
// group, writing its pid to DIR/helper.pid, then writes DIR/started and
// waits for DIR/release before it records the resource as running: a
// start that a test can interrupt at a known point. With hang, it waits
// for the release ignoring its deadline, as an agent stuck in a system
// call would.
func slowAgent() *ocf.Agent[slowConfig] {
	state := func(r *ocf.Request[slowConfig]) string { return r.StatePath(".state") }
	return &ocf.Agent[slowConfig]{
		Name: "slow",
		Params: func(c *slowConfig) []ocf.Param {
			return []ocf.Param{
				ocf.String(&c.Dir, "dir", "Where the start reports its progress", ocf.Required()),
				ocf.Bool(&c.Hang, "hang", "Ignore the deadline"),
			}
		},
		Start: func(ctx context.Context, r *ocf.Request[slowConfig]) error {
			helper := exec.Command("/bin/sleep", "60")
			if err := helper.Start(); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(r.Config.Dir, "helper.pid"), []byte(strconv.Itoa(helper.Process.Pid)), 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(r.Config.Dir, "started"), nil, 0o644); err != nil {
				return err
			}
			for {
				if _, err := os.Stat(filepath.Join(r.Config.Dir, "release")); err == nil {
					break
				}
				if !r.Config.Hang && ctx.Err() != nil {
					return ctx.Err()
				}
				time.Sleep(10 * time.Millisecond)
			}
			helper.Process.Kill()
			helper.Wait()
			return os.WriteFile(state(r), nil, 0o644)
		},
		Stop: func(ctx context.Context, r *ocf.Request[slowConfig]) error {
			if err := os.Remove(state(r)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		},
		Monitor: func(ctx context.Context, r *ocf.Request[slowConfig]) (ocf.State, error) {
			if _, err := os.Stat(state(r)); err != nil {
				return ocf.Stopped, nil
			}
			return ocf.Running, nil
		},
	}
}

func slowRunners(t *testing.T, extra map[string]string) (self, inProcess *Runner, dir string) {
	t.Helper()
	dir = t.TempDir()
	params := map[string]string{"dir": dir}
	for k, v := range extra {
		params[k] = v
	}
	self = NewSelfRunner(t, Config{Name: "slow", Params: params})
	inProcess = NewRunner(t, slowAgent(), Config{Name: "slow", Params: params, Env: map[string]string{"HA_RSCTMP": self.StateDir()}})
	return self, inProcess, dir
}

func helperPID(t *testing.T, dir string) int {
	t.Helper()
	pid, err := process.ReadPIDFile(filepath.Join(dir, "helper.pid"))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// gone reports whether pid has exited within 5 s: a SIGKILL sent to a
// group takes effect on each of its processes in its own time.
func gone(pid int) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if alive, err := process.Alive(pid); err == nil && !alive {
			return true
		}
	}
	return false
}

// The runner of the test binary gives the same codes and reasons as an
// in-process one, and kills the agent's group at the operation timeout
// as execd does.
func TestSelfRunner(t *testing.T) {
	r, _, dir := slowRunners(t, nil)
	if got := r.Run(ocf.ActionValidateAll, map[string]string{"OCF_RESKEY_dir": ""}); got.Code != ocf.Misconfigured || !strings.HasPrefix(got.Reason, "parameter dir is required") {
		t.Errorf("validate-all without dir = %v %q", got.Code, got.Reason)
	}
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		action string
		want   ocf.Code
	}{{ocf.ActionStart, ocf.Success}, {ocf.ActionMonitor, ocf.Success}, {ocf.ActionStop, ocf.Success}, {ocf.ActionMonitor, ocf.NotRunning}} {
		if got := r.Run(s.action, nil); got.Code != s.want {
			t.Fatalf("%s = %v %q, want %v\n%s", s.action, got.Code, got.Reason, s.want, got.Stderr)
		}
	}

	r, _, dir = slowRunners(t, map[string]string{"hang": "true"})
	got := r.Run(ocf.ActionStart, map[string]string{"OCF_RESKEY_CRM_meta_timeout": "1000"})
	if got.Code != ocf.GenericFailure {
		t.Errorf("start past its timeout = %v %q, want %v", got.Code, got.Reason, ocf.GenericFailure)
	}
	if !gone(helperPID(t, dir)) {
		t.Errorf("the helper in the agent's group survived the timeout")
	}

	missing := NewExecRunner(t, filepath.Join(t.TempDir(), "none"), Config{Name: "slow"})
	if got := missing.Run(ocf.ActionMonitor, nil); got.Code != ocf.NotInstalled || got.Reason == "" {
		t.Errorf("run of a missing executable = %v %q, want %v with a reason", got.Code, got.Reason, ocf.NotInstalled)
	}
}

func TestInterrupt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("group", func(t *testing.T) {
		r, inProcess, dir := slowRunners(t, nil)
		got, err := r.Interrupt(ctx, Interruption{Action: ocf.ActionStart, At: Exists(filepath.Join(dir, "started"))})
		if err != nil || got.Code != ocf.GenericFailure {
			t.Fatalf("Interrupt = %v %q, %v; want %v, nil", got.Code, got.Reason, err, ocf.GenericFailure)
		}
		if !gone(helperPID(t, dir)) {
			t.Errorf("the helper in the agent's group survived its kill")
		}
		// What Pacemaker runs next, in-process on the same state.
		if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		stopped := false
		Recover(t, inProcess, []ocf.Code{ocf.NotRunning}, func() { stopped = true })
		if !stopped {
			t.Errorf("Recover did not call its check after the stop")
		}
		if got := inProcess.Run(ocf.ActionMonitor, nil); got.Code != ocf.Success {
			t.Errorf("probe after Recover = %v, want the resource left started", got.Code)
		}
	})

	t.Run("agent only", func(t *testing.T) {
		r, _, dir := slowRunners(t, nil)
		if _, err := r.Interrupt(ctx, Interruption{Action: ocf.ActionStart, At: Exists(filepath.Join(dir, "started")), AgentOnly: true}); err != nil {
			t.Fatal(err)
		}
		pid := helperPID(t, dir)
		defer syscall.Kill(pid, syscall.SIGKILL)
		if alive, err := process.Alive(pid); !alive {
			t.Errorf("the helper died with the agent (%v); on-fail=block spares the group", err)
		}
	})

	t.Run("ended first", func(t *testing.T) {
		r, _, _ := slowRunners(t, nil)
		got, err := r.Interrupt(ctx, Interruption{Action: ocf.ActionMonitor, At: After(time.Hour)})
		if !errors.Is(err, ErrNotInterrupted) || got.Code != ocf.NotRunning {
			t.Errorf("Interrupt of a quick monitor = %v, %v; want %v, ErrNotInterrupted", got.Code, err, ocf.NotRunning)
		}
	})

	t.Run("context", func(t *testing.T) {
		r, _, dir := slowRunners(t, nil)
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if _, err := r.Interrupt(short, Interruption{Action: ocf.ActionStart, At: func() bool { return false }}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Interrupt past its context = %v, want DeadlineExceeded", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "helper.pid")); err == nil {
			if !gone(helperPID(t, dir)) {
				t.Errorf("the agent's group survived the end of the context")
			}
		}
	})

	t.Run("in-process", func(t *testing.T) {
		_, inProcess, _ := slowRunners(t, nil)
		if _, err := inProcess.Interrupt(ctx, Interruption{Action: ocf.ActionStart, At: After(0)}); err == nil || errors.Is(err, ErrNotInterrupted) {
			t.Errorf("Interrupt of an in-process runner = %v, want an error", err)
		}
	})
}

func TestSignalPending(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	at := SignalPending(pid, syscall.SIGTERM)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if at() {
		t.Fatal("SIGTERM pending before it was sent")
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !at() {
		t.Error("SIGTERM sent to a stopped process not seen pending")
	}
	if SignalPending(pid, syscall.SIGQUIT)() {
		t.Error("SIGQUIT seen pending, only SIGTERM was sent")
	}
	if SignalPending(1<<30, syscall.SIGTERM)() {
		t.Error("a signal pending for a process that does not exist")
	}
}
