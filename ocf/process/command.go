package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// commandEnv is the whole environment of a helper command run by Run: a
// fixed PATH and the C locale, so that output parsed by the agent never
// depends on the node's language, and none of the agent's own variables
// (OCF_RESKEY_* holds every instance parameter, private ones included).
var commandEnv = []string{DefaultPath, "LC_ALL=C"}

// maxOutput bounds what Run keeps of a helper's stdout and stderr, so a
// runaway tool cannot exhaust the agent's memory.
const maxOutput = 4 << 20

// ExitError is the error of Run when the command ran and exited with a
// status other than 0 (or was killed by a signal).
type ExitError struct {
	// Path and Args are the command that failed.
	Path string
	Args []string
	// Status is the exit status, or -1 when a signal ended the command.
	Status int
	// Stderr is the command's error output, as it printed it.
	Stderr []byte
}

func (e *ExitError) Error() string {
	what := fmt.Sprintf("exit status %d", e.Status)
	if e.Status < 0 {
		what = "killed by a signal"
	}
	msg := FirstLine(e.Stderr)
	if msg == "" {
		return fmt.Sprintf("%s %s: %s", e.Path, strings.Join(e.Args, " "), what)
	}
	return fmt.Sprintf("%s %s: %s: %s", e.Path, strings.Join(e.Args, " "), what, msg)
}

// Run runs the helper command path with args until it exits or ctx ends,
// and returns its standard output. It is the one way agents run short
// commands (a configuration check, a Pacemaker tool): the command gets
// only a fixed PATH and LC_ALL=C as its environment, stdin from
// /dev/null, and its own process group, so that when ctx ends the whole
// group is killed, not only the command (a shell script's children
// included); when the agent itself is killed (Pacemaker's SIGKILL at an
// operation's timeout), the kernel kills the command, though not its
// children. path must be absolute or a name found in that fixed PATH.
//
// Return values:
//   - (stdout, nil): the command exited with status 0.
//   - (stdout, err) with errors.As(err, **ExitError): it exited with
//     another status, or a signal killed it; ExitError.Stderr holds what
//     it printed there.
//   - (nil, err) with errors.Is(err, ctx.Err()): ctx ended first; the
//     command's process group was killed.
//   - (nil, err) with errors.Is(err, exec.ErrNotFound) or
//     fs.ErrNotExist: the command does not exist.
//   - (nil, err): it could not be started for another reason.
//
// Output beyond 4 MiB on either stream is discarded.
func Run(ctx context.Context, path string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	// exec.LookPath consults the agent's PATH; look the name up in the
	// fixed one instead, so the agent's environment cannot choose it.
	if !strings.Contains(path, "/") {
		cmd.Path = ""
		cmd.Err = nil
		for _, dir := range strings.Split(strings.TrimPrefix(DefaultPath, "PATH="), ":") {
			if p, err := exec.LookPath(dir + "/" + path); err == nil {
				cmd.Path = p
				break
			}
		}
		if cmd.Path == "" {
			return nil, fmt.Errorf("%s: %w", path, exec.ErrNotFound)
		}
	}
	cmd.Env = commandEnv
	cmd.Dir = "/"
	// Pdeathsig: Pacemaker kills an agent that outlives its timeout with
	// SIGKILL to the agent's process group, which the helper left; the
	// kernel then kills the helper when the thread that started it dies,
	// so a hung helper does not outlive its agent. The goroutine keeps
	// that thread until the helper has exited: an exiting thread would
	// kill the helper too soon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.Cancel = func() error {
		// The group is the command's pid, made by Setpgid.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// A grandchild that keeps stdout open must not keep Run waiting past
	// the kill.
	cmd.WaitDelay = 500 * time.Millisecond
	stdout := &capped{max: maxOutput}
	stderr := &capped{max: maxOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if ctx.Err() != nil && err != nil {
		return nil, fmt.Errorf("%s %s: %w", path, strings.Join(args, " "), ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return stdout.Bytes(), &ExitError{Path: path, Args: args, Status: ee.ExitCode(), Stderr: stderr.Bytes()}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return stdout.Bytes(), nil
}

// FirstLine returns the first non-blank line of a command's output,
// trimmed, or "" when there is none: the part of a tool's complaint that
// fits an exit reason.
func FirstLine(out []byte) string {
	for _, line := range strings.Split(string(out), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// capped is a buffer that keeps at most max bytes and drops the rest.
type capped struct {
	bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
