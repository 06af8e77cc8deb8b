package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// DefaultPath is the whole environment a daemon gets when Daemon.Env is
// nil.
const DefaultPath = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

// Daemon describes a long-lived program for StartDaemon.
type Daemon struct {
	// Path is the absolute path of the executable. It is never looked up
	// in PATH: the agent's PATH is Pacemaker's, and a relative name would
	// make the daemon depend on it.
	Path string
	// Args are the arguments after argv[0]; argv[0] is Path.
	Args []string
	// Env is the daemon's complete environment, as "KEY=value" strings.
	// When nil the daemon gets only DefaultPath, never the agent's own
	// environment, which holds every OCF_RESKEY_* parameter and the
	// cluster's internal variables. A non-nil empty slice means an empty
	// environment.
	Env []string
	// Dir is the working directory; "/" when empty, so that the daemon
	// does not keep the agent's directory (perhaps on a file system that
	// must be unmounted later) busy.
	Dir string
	// PIDFile, when not empty, receives the daemon's pid and a newline,
	// written atomically with mode 0644 before StartDaemon returns, and
	// PIDFile+IdentityFileSuffix its Identity, so that Status and Stop
	// never take a later process with the same pid for the daemon.
	// Leave it empty for daemons that write their own pid file.
	PIDFile string
	// LogFile, when not empty, receives the daemon's stdout and stderr,
	// appended (so that copytruncate rotation works) and created with
	// mode 0640 if missing. When empty both go to /dev/null.
	LogFile string
	// Credential, when not nil, is the user, group and supplementary
	// groups the daemon runs as. Switching requires the agent to run as
	// root, as Pacemaker runs it. LogFile is opened by the agent, so it
	// need not be writable by that user. nil keeps the agent's identity.
	Credential *syscall.Credential
}

// StartDaemon starts spec as a daemon detached from the agent, and
// returns once the executable has been loaded, without waiting for the
// daemon to become ready: that is the job of the caller's start loop,
// which polls its monitor until it succeeds or the daemon is gone (see
// Alive and Status).
//
// The daemon runs in a new session (setsid), so that neither the SIGKILL
// Pacemaker sends to the agent's process group when an action times out
// nor a hangup of the agent's terminal reaches it. Its stdin is
// /dev/null; stdout and stderr go to spec.LogFile or /dev/null; it
// inherits no other file descriptor (Go opens every file close-on-exec).
//
// Signal dispositions are not all reset: the daemon inherits the signal
// mask the agent was started with, and SIGHUP and SIGINT stay ignored in
// it if they were ignored when the agent started, because the Go runtime
// keeps those two as inherited and exec keeps ignored signals ignored.
// Choose StopOptions.Signal accordingly.
//
// Nothing waits for the daemon: it is not a child the agent must reap.
// If it exits while the agent still runs, it stays a zombie until the
// agent exits and init collects it; Alive, Status and Stop count a
// zombie as gone.
//
// ctx is only checked before starting: the daemon outlives the agent, so
// it must not be killed when ctx ends (exec.CommandContext would).
//
// For a program that forks into the background itself, the returned pid
// is the short-lived parent: run such programs in foreground mode, or
// leave PIDFile empty and read the pid file the program writes.
//
// Return values:
//   - (pid, nil): the daemon runs the executable, and spec.PIDFile, if
//     set, holds pid.
//   - (0, err) with errors.Is(err, fs.ErrNotExist): spec.Path (or Dir)
//     does not exist. Other exec failures (fs.ErrPermission for a file
//     that is not executable, an invalid Credential) are wrapped likewise.
//   - (0, err) with errors.Is(err, ctx.Err()): ctx had ended; nothing was
//     started.
//   - (0, err): spec.Path is not absolute, LogFile or /dev/null could not
//     be opened, or PIDFile could not be written. In the last case the
//     daemon's process group has been sent SIGKILL, so that no daemon
//     runs untracked by a pid file.
func StartDaemon(ctx context.Context, spec Daemon) (pid int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	if !filepath.IsAbs(spec.Path) {
		return 0, fmt.Errorf("start %q: path must be absolute", spec.Path)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	defer devnull.Close()
	var out *os.File
	if spec.LogFile != "" {
		// O_NOFOLLOW and O_NONBLOCK, then a regular file only: a link
		// planted at the log's path must not make root append to another
		// file, and a FIFO must not block the start.
		out, err = os.OpenFile(spec.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o640)
		if err != nil {
			return 0, fmt.Errorf("start %s: log file: %w", spec.Path, err)
		}
		if info, err := out.Stat(); err != nil || !info.Mode().IsRegular() {
			out.Close()
			return 0, fmt.Errorf("start %s: log file %s: not a regular file", spec.Path, spec.LogFile)
		}
	} else {
		out, err = os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return 0, fmt.Errorf("start %s: %w", spec.Path, err)
		}
	}
	// The child has its own copies after Start; keeping ours open would
	// only leak descriptors into the agent.
	defer out.Close()

	env := spec.Env
	if env == nil {
		env = []string{DefaultPath}
	}
	dir := spec.Dir
	if dir == "" {
		dir = "/"
	}
	// exec.Cmd is built directly, not with exec.Command, to avoid its PATH
	// lookup, and not with exec.CommandContext, which would kill the
	// daemon when ctx ends. Stdin and Stdout are *os.File so that they are
	// handed to the child as they are, with no copying goroutine that
	// would need a Wait.
	cmd := &exec.Cmd{
		Path:   spec.Path,
		Args:   append([]string{spec.Path}, spec.Args...),
		Env:    env,
		Dir:    dir,
		Stdin:  devnull,
		Stdout: out,
		Stderr: out,
		SysProcAttr: &syscall.SysProcAttr{
			Setsid:     true,
			Credential: spec.Credential,
		},
	}
	// Start returns only after exec succeeded or with the child's exec
	// error (reported through a close-on-exec pipe), so a missing binary
	// is an error here, not a daemon that exits at once.
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	pid = cmd.Process.Pid
	if spec.PIDFile != "" {
		// The identity first: a pid file is never newer than the
		// identity that vouches for it.
		werr := writeIdentity(spec.PIDFile, pid)
		if werr == nil {
			werr = WriteFileAtomic(spec.PIDFile, []byte(strconv.Itoa(pid)+"\n"), 0o644)
		}
		if werr != nil {
			// Setsid made the daemon the leader of a process group
			// numbered pid, so this also reaches anything it forked.
			kerr := syscall.Kill(-pid, syscall.SIGKILL)
			if kerr != nil {
				kerr = fmt.Errorf("kill daemon %d: %w", pid, kerr)
			}
			_ = cmd.Process.Release()
			return 0, fmt.Errorf("start %s: pid file: %w", spec.Path, errors.Join(werr, kerr))
		}
	}
	// Release frees the pidfd Go keeps for the child, since nothing will
	// ever Wait for it. Its error is ignored: the daemon runs, and a
	// descriptor left open in a short-lived agent is no start failure.
	_ = cmd.Process.Release()
	return pid, nil
}

// writeIdentity records the identity of pid for the pid file pidfile.
func writeIdentity(pidfile string, pid int) error {
	id, err := Identify(pid)
	if err != nil {
		return fmt.Errorf("identity of %d: %w", pid, err)
	}
	return WriteFileAtomic(pidfile+IdentityFileSuffix, []byte(id.String()+"\n"), 0o644)
}
