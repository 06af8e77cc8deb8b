package process

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ErrInvalidPIDFile is wrapped by ReadPIDFile when the file exists but
// does not hold a usable pid: empty (a daemon died while writing it, or
// is still writing it), not a number, or out of range.
var ErrInvalidPIDFile = errors.New("invalid pid file")

// maxPIDFileSize bounds what ReadPIDFile reads: a pid file holds a few
// digits, and a huge file there is corruption that must not be slurped
// into memory.
const maxPIDFileSize = 4096

// ReadPIDFile returns the pid stored on the first line of the file at
// path. Surrounding white space is ignored; later lines are ignored too,
// because some daemons (postgres) store more data after the pid.
//
// Return values:
//   - (pid, nil): the first line holds a pid between 1 and 2^22.
//   - (0, err) with errors.Is(err, fs.ErrNotExist): there is no such file,
//     which for most daemons means "not running".
//   - (0, err) with errors.Is(err, ErrInvalidPIDFile): the file exists but
//     is empty or does not start with a valid pid. The message says why.
//   - (0, err): the file could not be read.
func ReadPIDFile(path string) (int, error) {
	data, err := readSmall(path)
	if err != nil {
		return 0, err
	}
	pid, err := parsePID(data)
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %w", path, ErrInvalidPIDFile, err)
	}
	return pid, nil
}

// readSmall reads at most maxPIDFileSize bytes of the file at path: a pid
// or identity file holds a line, and a huge file there is corruption that
// must not be slurped into memory. Errors are os.Open's (fs.ErrNotExist
// when there is no file) or the read's.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPIDFileSize))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// parsePID extracts the pid from the contents of a pid file.
func parsePID(data []byte) (int, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return 0, errors.New("empty first line")
	}
	pid, err := strconv.Atoi(string(line))
	if err != nil {
		return 0, fmt.Errorf("first line %q is not a number", truncate(line, 32))
	}
	if err := checkPID(pid); err != nil {
		return 0, err
	}
	return pid, nil
}

// truncate shortens garbage quoted in an error message, so a binary file
// named as a pid file does not flood the log.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// State is what Status concluded about the daemon named by a pid file.
type State int

// The states Status distinguishes. Monitors typically map Running to
// OCF_SUCCESS and Stopped and Stale to OCF_NOT_RUNNING (after perhaps
// removing the stale file), and an error to OCF_ERR_GENERIC.
const (
	// Unknown is returned together with every error: the state could not
	// be determined. It is the zero value so that a State from an ignored
	// error is never mistaken for a definite answer.
	Unknown State = iota
	// Stopped: there is no pid file.
	Stopped
	// Running: the pid file names a live (non-zombie) process, accepted
	// by the Matcher if one was given.
	Running
	// Stale: the pid file exists but names no live process of ours: the
	// process is gone or a zombie, its pid now belongs to another program
	// (rejected by the Matcher), or the file holds no valid pid.
	Stale
)

// String returns the lower-case name of the state, for logs.
func (s State) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Stopped:
		return "stopped"
	case Running:
		return "running"
	case Stale:
		return "stale"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// A Matcher tells whether the live process pid is the expected daemon.
// Status uses it to notice that a crashed daemon's pid was reused by an
// unrelated program, which would otherwise look like a running resource
// (and later be killed by stop).
//
// A Matcher returns (false, nil) when the process is another program or
// has exited meanwhile, and an error only when it cannot tell.
type Matcher func(pid int) (bool, error)

// MatchExecutable returns a Matcher that accepts a process running the
// executable at path. It compares the target of /proc/<pid>/exe with path
// and with path after resolving symbolic links (so /bin/sleep matches
// /usr/bin/sleep on merged-/usr systems), ignoring the " (deleted)" suffix
// the kernel adds when a package upgrade replaced the binary under a
// running daemon.
//
// When /proc/<pid>/exe cannot be read because the process belongs to
// another user and the agent is not root, it falls back to argv[0] from
// /proc/<pid>/cmdline, which the process can forge; root agents (the
// normal case under Pacemaker) never need the fallback.
//
// It does not recognise daemons run by an interpreter (exe is then the
// interpreter); use MatchCmdline for those.
func MatchExecutable(path string) Matcher {
	path = filepath.Clean(path)
	return func(pid int) (bool, error) {
		// Resolved on each call rather than once: the binary may be
		// replaced between monitors, and a missing one is not an error
		// here since the running process may hold a deleted copy.
		resolved, err := filepath.EvalSymlinks(path)
		if err != nil {
			resolved = ""
		}
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		switch {
		case err == nil:
			return exeMatches(link, path, resolved), nil
		case errors.Is(err, fs.ErrNotExist):
			// Exited meanwhile, or a kernel thread (no exe): not ours.
			return false, nil
		case errors.Is(err, fs.ErrPermission):
			argv, err := readCmdline(pid)
			if err != nil || len(argv) == 0 {
				return false, err
			}
			return argv0Matches(argv[0], path, resolved), nil
		default:
			return false, err
		}
	}
}

// MatchCmdline returns a Matcher that hands the process's arguments, read
// from /proc/<pid>/cmdline, to match. It suits daemons that an interpreter
// runs (argv is then like ["/usr/bin/python3", "/opt/app/daemon.py"]) and
// daemons identified by an argument, such as a configuration file. A
// process that rewrote its argv (nginx: "nginx: master process ...") shows
// a single argument holding spaces. Zombies and kernel threads have no
// arguments, and match is not called for them. A process caught inside
// execve, which shows no arguments for a moment, is read again until its
// new arguments show (for at most 500 ms), so a daemon that re-executes
// itself never looks gone.
func MatchCmdline(match func(argv []string) bool) Matcher {
	return func(pid int) (bool, error) {
		argv, err := readCmdline(pid)
		if err != nil || len(argv) == 0 {
			return false, err
		}
		return match(argv), nil
	}
}

// execWindow bounds how long readCmdline waits for the arguments of a
// process that shows none. Inside execve the kernel shows a process with
// no arguments for a moment (measured: about 2 ms; a test on a machine
// loaded 8 times over its CPUs once waited out 100 ms); HAProxy's master re-executes itself once after starting and
// at every reload, and a monitor that read it then would call it gone.
const execWindow = 500 * time.Millisecond

// readCmdline reads /proc/<pid>/cmdline; a process that has exited
// meanwhile gives (nil, nil) so Matchers can report it as "not ours".
// Empty arguments are read again for up to execWindow before they stand:
// only kernel threads and zombies keep them empty.
func readCmdline(pid int) ([]string, error) {
	path := fmt.Sprintf("/proc/%d/cmdline", pid)
	var waited time.Duration
	for pause := time.Millisecond; ; pause *= 2 {
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if len(data) > 0 || waited >= execWindow {
			return parseCmdline(data), nil
		}
		time.Sleep(pause)
		waited += pause
	}
}

// Status reports whether the daemon named by the pid file at pidfile is
// running. When StartDaemon recorded the daemon's Identity beside the pid
// file, that decides: the process is the daemon only if it still has the
// recorded start time, whatever executable it runs now (a daemon whose
// binary was removed or upgraded is still found), and match is not
// called. Otherwise match, when not nil, guards against pid reuse (see
// Matcher); without either, any live process with that pid counts as the
// daemon.
//
// Return values:
//   - (Stopped, 0, nil): there is no pid file.
//   - (Running, pid, nil): the pid file names a live process with the
//     recorded identity, or, without one, that match accepts.
//   - (Stale, pid, nil): the pid file names a process that has exited, is
//     a zombie, has another identity than the recorded one, or that match
//     rejects.
//   - (Stale, 0, nil): the pid file exists but holds no valid pid; call
//     ReadPIDFile for the reason.
//   - (Unknown, 0, err): the pid file could not be read.
//   - (Unknown, pid, err): the process could not be examined, or match
//     failed.
func Status(pidfile string, match Matcher) (State, int, error) {
	pid, err := ReadPIDFile(pidfile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Stopped, 0, nil
	case errors.Is(err, ErrInvalidPIDFile):
		return Stale, 0, nil
	case err != nil:
		return Unknown, 0, err
	}
	alive, err := Alive(pid)
	if err != nil {
		return Unknown, pid, err
	}
	if !alive {
		return Stale, pid, nil
	}
	if id, ok := ReadIdentity(pidfile, pid); ok {
		same, err := id.Same()
		switch {
		case err != nil:
			return Unknown, pid, fmt.Errorf("identify process %d: %w", pid, err)
		case !same:
			return Stale, pid, nil
		}
		return Running, pid, nil
	}
	if match != nil {
		ok, err := match(pid)
		if err != nil {
			return Unknown, pid, fmt.Errorf("match process %d: %w", pid, err)
		}
		if !ok {
			return Stale, pid, nil
		}
	}
	return Running, pid, nil
}
