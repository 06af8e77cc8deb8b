package process

import (
	"context"
	"errors"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestStop tells escalation apart by the signal that ended the process,
// read from its exit status (the test binary is its parent), not by
// timing, which a loaded machine stretches at will. The only time bound
// is a lower one: SIGKILL never comes before the grace period is over.
func TestStop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		start   func(t *testing.T) int
		timeout time.Duration
		opts    StopOptions
		// killedBy is the signal that must have ended the process; 0
		// when the process was gone before Stop.
		killedBy syscall.Signal
		// minTime is the least time Stop may take: the grace period
		// before SIGKILL.
		minTime time.Duration
	}{
		{
			name:     "honours SIGTERM",
			start:    startSleep,
			timeout:  10 * time.Second,
			killedBy: syscall.SIGTERM,
		},
		{
			name:     "ignores SIGTERM, escalates after grace",
			start:    func(t *testing.T) int { pid, _ := startStubborn(t); return pid },
			timeout:  10 * time.Second,
			opts:     StopOptions{Grace: 200 * time.Millisecond},
			killedBy: syscall.SIGKILL,
			minTime:  200 * time.Millisecond,
		},
		{
			name:     "default grace is half the time left",
			start:    func(t *testing.T) int { pid, _ := startStubborn(t); return pid },
			timeout:  800 * time.Millisecond,
			killedBy: syscall.SIGKILL,
			minTime:  350 * time.Millisecond,
		},
		{
			name:     "negative grace kills at once",
			start:    func(t *testing.T) int { pid, _ := startStubborn(t); return pid },
			timeout:  10 * time.Second,
			opts:     StopOptions{Grace: -1},
			killedBy: syscall.SIGKILL,
		},
		{
			// The shell ignores SIGTERM but not SIGUSR1. (Not SIGINT:
			// run in the background, go test may inherit it ignored and
			// pass that on.)
			name:     "custom signal",
			start:    func(t *testing.T) int { pid, _ := startStubborn(t); return pid },
			timeout:  10 * time.Second,
			opts:     StopOptions{Signal: syscall.SIGUSR1, Grace: time.Hour},
			killedBy: syscall.SIGUSR1,
		},
		{
			name:    "zombie is already gone",
			start:   zombiePID,
			timeout: time.Second,
			opts:    StopOptions{Grace: time.Hour},
		},
		{
			name:    "reaped process is already gone",
			start:   deadPID,
			timeout: time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pid := tt.start(t)
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			begin := time.Now()
			err := Stop(ctx, pid, tt.opts)
			took := time.Since(begin)
			if err != nil {
				t.Fatalf("Stop(%d) = %v, want nil", pid, err)
			}
			if mustAlive(t, pid) {
				t.Errorf("process %d still alive after Stop returned nil", pid)
			}
			if took < tt.minTime {
				t.Errorf("Stop took %v, less than the grace period %v", took, tt.minTime)
			}
			if tt.killedBy == 0 {
				return
			}
			var ws syscall.WaitStatus
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
				t.Fatalf("wait for %d: %v", pid, err)
			}
			if !ws.Signaled() || ws.Signal() != tt.killedBy {
				t.Errorf("process ended with %v, want killed by %v", ws, tt.killedBy)
			}
		})
	}
}

func TestStopKillsBeforeDeadlineDespiteLongGrace(t *testing.T) {
	t.Parallel()
	pid, _ := startStubborn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// A grace longer than the time left is cut to half of it, so SIGKILL
	// still comes before Pacemaker's timeout would.
	if err := Stop(ctx, pid, StopOptions{Grace: time.Hour}); err != nil {
		t.Errorf("Stop() = %v, want nil", err)
	}
	if mustAlive(t, pid) {
		t.Error("stubborn process survived Stop")
	}
}

// A stop whose time is up still kills: leaving the process running would
// get the node fenced with the process untouched.
func TestStopContextAlreadyDone(t *testing.T) {
	t.Parallel()
	pid, _ := startStubborn(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Stop(ctx, pid, StopOptions{}); err != nil {
		t.Errorf("Stop() = %v, want nil (SIGKILL sent, process gone)", err)
	}
	if mustAlive(t, pid) {
		t.Error("process survived a Stop with a done ctx")
	}
	// Stopping something already gone needs no time, so it succeeds even
	// with a done ctx.
	if err := Stop(ctx, deadPID(t), StopOptions{}); err != nil {
		t.Errorf("Stop(dead pid) with done ctx = %v, want nil", err)
	}
}

func TestStopRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		stop func(ctx context.Context, pid int, opts StopOptions) error
		pid  int
	}{
		{name: "zero would be our group", stop: Stop, pid: 0},
		{name: "minus one would be everyone", stop: Stop, pid: -1},
		{name: "init", stop: Stop, pid: 1},
		{name: "the agent itself", stop: Stop, pid: os.Getpid()},
		{name: "group zero", stop: StopGroup, pid: 0},
		{name: "negative group", stop: StopGroup, pid: -5},
		{name: "the agent's own group", stop: StopGroup, pid: syscall.Getpgrp()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.stop(context.Background(), tt.pid, StopOptions{Grace: -1})
			if err == nil || errors.Is(err, ErrStillRunning) {
				t.Errorf("stop(%d) = %v, want a refusal", tt.pid, err)
			}
		})
	}
}

func TestStopGroup(t *testing.T) {
	t.Parallel()
	pid, childFile := startStubborn(t)
	child, err := ReadPIDFile(childFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := StopGroup(ctx, pid, StopOptions{Grace: 100 * time.Millisecond}); err != nil {
		t.Fatalf("StopGroup() = %v, want nil", err)
	}
	for _, p := range []int{pid, child} {
		if mustAlive(t, p) {
			t.Errorf("process %d of the group still alive", p)
		}
	}
	// Stopping it again is a no-op.
	if err := StopGroup(ctx, pid, StopOptions{}); err != nil {
		t.Errorf("second StopGroup() = %v, want nil", err)
	}
}

// TestStopLeavesGroup shows why StopGroup exists: Stop ends only the
// daemon, and what it forked keeps running.
func TestStopLeavesGroup(t *testing.T) {
	t.Parallel()
	pid, childFile := startStubborn(t)
	child, err := ReadPIDFile(childFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := Stop(ctx, pid, StopOptions{Grace: -1}); err != nil {
		t.Fatalf("Stop() = %v, want nil", err)
	}
	if !mustAlive(t, child) {
		t.Errorf("child %d died with its parent; expected it to survive Stop", child)
	}
	// The leader is gone, yet StopGroup still finds and ends the rest.
	if err := StopGroup(ctx, pid, StopOptions{Grace: -1}); err != nil {
		t.Fatalf("StopGroup() = %v, want nil", err)
	}
	if mustAlive(t, child) {
		t.Errorf("child %d survived StopGroup", child)
	}
}

func TestGraceBoundedByDeadline(t *testing.T) {
	withDeadline := func(d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return ctx
	}
	tests := []struct {
		name     string
		ctx      context.Context
		grace    time.Duration
		min, max time.Duration
	}{
		{"default without deadline", context.Background(), 0, defaultGrace, defaultGrace},
		{"explicit without deadline", context.Background(), 3 * time.Second, 3 * time.Second, 3 * time.Second},
		{"default is half the time left", withDeadline(10 * time.Second), 0, 4 * time.Second, 5 * time.Second},
		{"short explicit grace kept", withDeadline(10 * time.Second), time.Second, time.Second, time.Second},
		{"long explicit grace cut to half", withDeadline(10 * time.Second), time.Minute, 4 * time.Second, 5 * time.Second},
		{"negative: kill at once", withDeadline(10 * time.Second), -1, 0, 0},
	}
	for _, tt := range tests {
		got := StopOptions{Grace: tt.grace}.grace(tt.ctx)
		if got < tt.min || got > tt.max {
			t.Errorf("%s: grace = %v, want %v..%v", tt.name, got, tt.min, tt.max)
		}
	}
}

// The deadline may pass while the agent waits out the grace period (a
// loaded node does not run it for a while): SIGKILL must still be sent.
// Cancelling ctx in the middle of the grace period stands for that.
func TestStopKillsWhenDeadlinePassesDuringGrace(t *testing.T) {
	t.Parallel()
	pid, _ := startStubborn(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timer := time.AfterFunc(100*time.Millisecond, cancel)
	defer timer.Stop()
	if err := Stop(ctx, pid, StopOptions{Grace: 5 * time.Second}); err != nil {
		t.Errorf("Stop() = %v, want nil", err)
	}
	if mustAlive(t, pid) {
		t.Error("the process that ignores SIGTERM survived: SIGKILL was not sent")
	}
}

// The same under CPU load, with a real deadline: a spinning goroutine per
// CPU (bounded: they stop when the test ends, 10 s at most) competes with
// Stop for the processor.
func TestStopUnderLoadIgnoringTerm(t *testing.T) {
	pid, _ := startStubborn(t)
	done := make(chan struct{})
	defer close(done)
	limit := time.Now().Add(10 * time.Second)
	for i := 0; i < 2*runtime.NumCPU(); i++ {
		go func() {
			for time.Now().Before(limit) {
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	if err := Stop(ctx, pid, StopOptions{}); err != nil {
		t.Errorf("Stop() under load = %v, want nil", err)
	}
	if mustAlive(t, pid) {
		t.Error("the process that ignores SIGTERM survived Stop under load")
	}
}

// A pid now held by another process is never signalled when the daemon's
// identity is known.
func TestStopSparesStranger(t *testing.T) {
	t.Parallel()
	pid := startSleep(t)
	id, err := Identify(pid)
	if err != nil {
		t.Fatal(err)
	}
	stranger := id
	stranger.Start++ // the same pid, started at another time
	for name, stop := range map[string]func() error{
		"Stop":      func() error { return Stop(context.Background(), pid, StopOptions{Identity: stranger}) },
		"StopGroup": func() error { return StopGroup(context.Background(), pid, StopOptions{Identity: stranger}) },
	} {
		if err := stop(); err != nil {
			t.Errorf("%s with another identity = %v, want nil (nothing of ours runs)", name, err)
		}
		if !mustAlive(t, pid) {
			t.Fatalf("%s signalled a process whose identity differs", name)
		}
	}
	if err := Stop(context.Background(), pid, StopOptions{Identity: id}); err != nil {
		t.Errorf("Stop with the right identity = %v", err)
	}
	if mustAlive(t, pid) {
		t.Error("Stop with the right identity left the process running")
	}
}
