package process

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"
)

// ErrStillRunning is wrapped by the error of Stop and StopGroup when the
// process (or group) was still alive when they gave up. For a stop action
// this must become a failure: Pacemaker then fences the node rather than
// start the resource a second time elsewhere.
var ErrStillRunning = errors.New("process still running")

const (
	// stopPoll is how often Stop looks whether the process is gone.
	// Signals give no completion notice for a process that is not our
	// child, so polling is the only portable way; 50 ms keeps a stop
	// snappy without measurable load.
	stopPoll = 50 * time.Millisecond
	// defaultGrace is the grace period when ctx has no deadline.
	defaultGrace = 10 * time.Second
	// afterDeadline is how long Stop still watches for a process it sent
	// SIGKILL once ctx has ended: the kernel needs a moment to tear a
	// process down, and reporting it gone beats a failed stop, which
	// gets the node fenced.
	afterDeadline = 250 * time.Millisecond
)

// StopOptions tunes Stop and StopGroup. The zero value sends SIGTERM and
// escalates to SIGKILL halfway to ctx's deadline.
type StopOptions struct {
	// Signal asks the process to exit. 0 means SIGTERM; some daemons
	// want another (SIGQUIT for a graceful nginx, SIGINT for postgres'
	// fast shutdown).
	Signal syscall.Signal
	// Grace is how long the process has to exit after Signal before
	// SIGKILL. 0 means half the time left until ctx's deadline, leaving
	// the other half to see SIGKILL through, or 10 s if ctx has no
	// deadline. A longer Grace is cut to that half too, so SIGKILL is
	// always sent before the deadline. A negative Grace sends SIGKILL
	// right after Signal.
	Grace time.Duration
	// Identity, when its PID is set, is the process Stop must end (for
	// StopGroup: the group's leader). Stop signals nothing if the pid
	// now belongs to another process, and reports the process gone: see
	// ReadIdentity. It is checked after the process is pinned by a
	// pidfd, so the check and the signals cannot disagree.
	Identity Identity
}

// grace resolves the grace period for a stop starting now.
func (o StopOptions) grace(ctx context.Context) time.Duration {
	if o.Grace < 0 {
		return 0
	}
	half := defaultGrace
	if dl, ok := ctx.Deadline(); ok {
		half = max(time.Until(dl)/2, 0)
	} else if o.Grace > 0 {
		return o.Grace
	}
	if o.Grace > 0 {
		return min(o.Grace, half)
	}
	return half
}

// Stop ends the process pid: it sends opts.Signal (SIGTERM by default),
// waits up to the grace period for the process to go, then sends SIGKILL
// and waits until it is gone or ctx is done. A zombie counts as gone: it
// no longer runs and only waits for its parent.
//
// Signals go through a pidfd where the kernel supports it (Linux 5.3), so
// that if the process exits and its pid is reused during the grace
// period, SIGKILL does not reach the newcomer. Stop signals pid alone;
// see StopGroup for a daemon together with the processes it forked.
//
// The grace period never runs past half the time left until ctx's
// deadline, so the other half is kept for SIGKILL and for seeing the
// process go. SIGKILL is always sent once the process outlives the grace
// period, even when ctx has ended meanwhile (a loaded node may not run
// the agent for a while): a stop that gives up must never leave the
// process running untouched. When ctx has ended, Stop still watches for
// a moment (250 ms) before it reports the process still running. With a
// ctx that has no deadline, Stop waits for a process that even SIGKILL
// does not end (stuck in uninterruptible sleep) as long as it lives.
//
// Return values:
//   - nil: the process is verified gone (or was never running), or
//     opts.Identity is set and pid belongs to another process, which was
//     not signalled.
//   - an error wrapping ErrStillRunning and ctx.Err(): ctx ended while the
//     process still ran, SIGKILL sent.
//   - an error wrapping syscall.EPERM: the agent may not signal pid.
//   - an error: pid is not positive, is the agent itself or init, or the
//     process could not be examined.
func Stop(ctx context.Context, pid int, opts StopOptions) error {
	if err := checkPID(pid); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if pid == 1 || pid == os.Getpid() {
		return fmt.Errorf("stop: refusing to stop pid %d (init or the agent itself)", pid)
	}
	// FindProcess never fails on Unix; with pidfd support it pins the
	// process so that later signals cannot hit a reused pid.
	p, err := os.FindProcess(pid)
	if err != nil {
		return fmt.Errorf("stop process %d: %w", pid, err)
	}
	defer p.Release()
	if ok, err := identityHolds(opts.Identity, pid); err != nil || !ok {
		return err
	}
	return stop(ctx, &procTarget{pid: pid, p: p}, opts)
}

// StopGroup is Stop for the whole process group pgid: it signals every
// member at once and waits until no member runs. A daemon started by
// StartDaemon leads its own group, numbered by its pid, so
// StopGroup(ctx, pid, opts) also ends the helpers it forked, which Stop
// would leave running, and ends the group's leftovers if the leader
// itself has already died. Members that moved to another group or
// session (with setsid or setpgid) are not reached.
//
// Group signals use the bare pgid, so unlike Stop they are not protected
// against reuse of the number by a new group. Whether members are gone is
// read from /proc (members that are zombies count as gone); without /proc
// a zombie member counts as running.
//
// Return values are those of Stop, for the group instead of the process;
// StopGroup also refuses the agent's own process group, which Pacemaker
// makes the agent lead.
func StopGroup(ctx context.Context, pgid int, opts StopOptions) error {
	if err := checkPID(pgid); err != nil {
		return fmt.Errorf("stop group: %w", err)
	}
	if pgid == 1 || pgid == syscall.Getpgrp() {
		return fmt.Errorf("stop group: refusing to stop process group %d (init's or the agent's own)", pgid)
	}
	// A live leader with another identity means the number was reused by
	// a stranger's new group. A dead leader's number cannot be reused
	// while members of its group remain, so leftovers are still ours.
	if alive, _ := Alive(pgid); alive {
		if ok, err := identityHolds(opts.Identity, pgid); err != nil || !ok {
			return err
		}
	}
	return stop(ctx, groupTarget(pgid), opts)
}

// target abstracts what Stop and StopGroup signal and watch.
type target interface {
	// signal sends sig; gone reports that there was nothing left to
	// signal.
	signal(sig syscall.Signal) (gone bool, err error)
	// gone reports whether nothing of the target runs any more.
	gone() (bool, error)
	// String names the target in errors.
	String() string
}

// identityHolds reports whether pid is still the process id names; an
// unset id (PID 0) holds for any pid.
func identityHolds(id Identity, pid int) (bool, error) {
	if id.PID == 0 {
		return true, nil
	}
	if id.PID != pid {
		return false, fmt.Errorf("stop: identity of pid %d given for pid %d", id.PID, pid)
	}
	return id.Same()
}

// stop runs the TERM, wait, KILL, wait sequence shared by Stop and
// StopGroup.
func stop(ctx context.Context, t target, opts StopOptions) error {
	if gone, err := t.gone(); err != nil || gone {
		return err
	}
	sig := opts.Signal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	sent := "SIGKILL"
	if ctx.Err() == nil {
		grace := opts.grace(ctx)
		if gone, err := t.signal(sig); err != nil || gone {
			return err
		}
		gone, err := waitGone(ctx, t, grace)
		if err != nil || gone {
			return err
		}
		sent = sigName(sig) + " and SIGKILL"
	}
	// Whatever happened to ctx meanwhile, the process outlived its grace:
	// SIGKILL, then watch it go, for a moment more if ctx has ended.
	if gone, err := t.signal(syscall.SIGKILL); err != nil || gone {
		return err
	}
	watch := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		watch, cancel = context.WithTimeout(context.WithoutCancel(ctx), afterDeadline)
		defer cancel()
	}
	gone, err := waitGone(watch, t, -1)
	if err != nil || gone {
		return err
	}
	cause := ctx.Err()
	if cause == nil {
		cause = context.DeadlineExceeded
	}
	return fmt.Errorf("%s: %w after %s: %w", t, ErrStillRunning, sent, cause)
}

// waitGone polls t until it is gone, ctx is done, or limit has passed (a
// negative limit means no limit). It returns (false, nil) when it gave
// up, leaving the caller to tell a timeout from a done ctx.
func waitGone(ctx context.Context, t target, limit time.Duration) (bool, error) {
	var expired <-chan time.Time
	if limit >= 0 {
		timer := time.NewTimer(limit)
		defer timer.Stop()
		expired = timer.C
	}
	ticker := time.NewTicker(stopPoll)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			// The process may have gone in the last moments; saying
			// so beats a failed stop, which means fencing.
			return t.gone()
		case <-expired:
			return t.gone()
		case <-ticker.C:
			if gone, err := t.gone(); err != nil || gone {
				return gone, err
			}
		}
	}
}

// procTarget is a single process, held through an os.Process so that a
// pidfd protects signals against pid reuse.
type procTarget struct {
	pid int
	p   *os.Process
}

func (t *procTarget) String() string { return "process " + strconv.Itoa(t.pid) }

func (t *procTarget) signal(sig syscall.Signal) (bool, error) {
	err := t.p.Signal(sig)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, os.ErrProcessDone):
		return true, nil
	default:
		return false, fmt.Errorf("%s: send %s: %w", t, sigName(sig), err)
	}
}

func (t *procTarget) gone() (bool, error) {
	err := t.p.Signal(syscall.Signal(0))
	switch {
	case err == nil, errors.Is(err, syscall.EPERM):
		return !notZombie(t.pid), nil
	case errors.Is(err, os.ErrProcessDone):
		return true, nil
	default:
		return false, fmt.Errorf("%s: %w", t, err)
	}
}

// groupTarget is a process group, addressed by its number.
type groupTarget int

func (t groupTarget) String() string { return "process group " + strconv.Itoa(int(t)) }

func (t groupTarget) signal(sig syscall.Signal) (bool, error) {
	err := syscall.Kill(-int(t), sig)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, syscall.ESRCH):
		return true, nil
	default:
		return false, fmt.Errorf("%s: send %s: %w", t, sigName(sig), err)
	}
}

func (t groupTarget) gone() (bool, error) {
	err := syscall.Kill(-int(t), 0)
	switch {
	case errors.Is(err, syscall.ESRCH):
		return true, nil
	case err != nil && !errors.Is(err, syscall.EPERM):
		return false, fmt.Errorf("%s: %w", t, err)
	}
	// kill(2) also succeeds while only zombies remain in the group, so
	// look for a member that still runs.
	running, err := groupRunning(int(t))
	if err != nil {
		// /proc unreadable: trust kill(2), which found members.
		return false, nil
	}
	return !running, nil
}

// groupRunning reports whether any process in /proc belongs to process
// group pgid and is not a zombie.
func groupRunning(pgid int) (bool, error) {
	members, err := GroupMembers(pgid)
	return len(members) > 0, err
}

// GroupMembers lists the processes of process group pgid that still run
// (zombies left out), the group's leader included, from /proc.
//
// Return values:
//   - (pids, nil): the members found; none when the group is empty.
//   - (nil, err): /proc could not be listed or a member's stat not read.
func GroupMembers(pgid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue // not a process directory
		}
		st, err := readStat(pid)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // exited while we looked
			}
			return nil, err
		}
		if st.pgrp == pgid && !dead(st.state) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// sigName formats a signal for errors; syscall.Signal's own String gives
// only a description such as "terminated".
func sigName(sig syscall.Signal) string {
	return fmt.Sprintf("signal %d (%v)", int(sig), sig)
}
