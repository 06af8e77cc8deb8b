package process

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// maxPID is the largest pid Linux can hand out (PID_MAX_LIMIT on 64-bit).
// Anything above it in a pid file is corruption, not a process.
const maxPID = 1 << 22

// procStat holds the fields of /proc/<pid>/stat this package relies on.
type procStat struct {
	state   byte // R, S, D, Z, X, ...
	ppid    int
	pgrp    int
	session int
}

// parseStat parses the contents of /proc/<pid>/stat. It is separate from
// the read so that the awkward parts (a comm that holds spaces or
// parentheses) are table-tested without running such programs.
func parseStat(data []byte) (procStat, error) {
	// comm is the only field that can hold spaces or ')', and it is
	// wrapped in parentheses: everything after the last ')' is
	// space-separated and trustworthy.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed stat: no closing parenthesis after comm")
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state); we need up to field 6 (session).
	if len(fields) < 4 || len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed stat: %d fields after comm", len(fields))
	}
	var st procStat
	st.state = fields[0][0]
	for j, dst := range []*int{&st.ppid, &st.pgrp, &st.session} {
		n, err := strconv.Atoi(fields[j+1])
		if err != nil {
			return procStat{}, fmt.Errorf("malformed stat field %d: %w", j+4, err)
		}
		*dst = n
	}
	return st, nil
}

// readStat reads and parses /proc/<pid>/stat. A missing entry is returned
// as an error satisfying errors.Is(err, fs.ErrNotExist): the process has
// been reaped.
func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	st, err := parseStat(data)
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// dead reports whether a process state letter means the process has
// finished running: a zombie (Z) only waits for its parent to collect
// its exit status, and X is the instant of being reaped. Neither holds
// resources that a stop must wait for.
func dead(state byte) bool {
	return state == 'Z' || state == 'X'
}

// Alive reports whether a process with the given pid exists and has not
// exited. It answers with kill(pid, 0), where EPERM means the process
// exists but belongs to someone else, and then rules out zombies with
// /proc/<pid>/stat, because a zombie answers kill(pid, 0) although it will
// never run again (a daemon started by StartDaemon that dies stays a
// zombie of the agent until the agent exits).
//
// Return values:
//   - (true, nil): the process exists and is not a zombie.
//   - (false, nil): no such process, or it is a zombie.
//   - (false, err): pid is not positive, or kill(2) failed for another
//     reason than ESRCH or EPERM.
//
// If /proc cannot be read (not mounted), Alive trusts kill(2) alone and
// counts zombies as alive.
func Alive(pid int) (bool, error) {
	if err := checkPID(pid); err != nil {
		return false, err
	}
	err := syscall.Kill(pid, 0)
	switch {
	case err == nil, errors.Is(err, syscall.EPERM):
	case errors.Is(err, syscall.ESRCH):
		return false, nil
	default:
		return false, fmt.Errorf("kill(%d, 0): %w", pid, err)
	}
	return notZombie(pid), nil
}

// notZombie completes a successful kill(pid, 0) by looking at the state
// in /proc. It only answers false on evidence of death, so that a /proc
// that cannot be read never makes a running process look stopped.
func notZombie(pid int) bool {
	st, err := readStat(pid)
	if errors.Is(err, fs.ErrNotExist) {
		// Reaped between kill(2) and the read.
		return false
	}
	if err != nil {
		return true
	}
	return !dead(st.state)
}

// checkPID rejects pids that kill(2) would interpret as groups: 0 is the
// caller's own process group and -1 is every process it may signal, so
// passing a corrupt pid file value through would be disastrous.
func checkPID(pid int) error {
	if pid <= 0 || pid > maxPID {
		return fmt.Errorf("invalid pid %d: must be between 1 and %d", pid, maxPID)
	}
	return nil
}

// deletedSuffix is what the kernel appends to /proc/<pid>/exe when the
// executable was unlinked after exec, as a package upgrade does.
const deletedSuffix = " (deleted)"

// exeMatches reports whether the target of a /proc/<pid>/exe link names
// one of the wanted paths. The " (deleted)" suffix is dropped so that a
// daemon still running the binary that a package upgrade replaced is
// still recognised as ours.
func exeMatches(link string, want ...string) bool {
	link = strings.TrimSuffix(link, deletedSuffix)
	for _, w := range want {
		if w != "" && link == w {
			return true
		}
	}
	return false
}

// parseCmdline splits the contents of /proc/<pid>/cmdline into arguments.
// The kernel separates and terminates them with NUL; a process that
// rewrote its argv (nginx, postgres) may leave a single string with
// spaces, which is returned as one argument.
func parseCmdline(data []byte) []string {
	data = bytes.TrimRight(data, "\x00")
	if len(data) == 0 {
		// Kernel threads and zombies have an empty cmdline.
		return nil
	}
	return strings.Split(string(data), "\x00")
}

// argv0Matches reports whether argv[0] names the executable: either the
// same path (literally or after resolving symlinks) or, when the program
// was started through a PATH search and argv[0] carries no directory, the
// same base name.
func argv0Matches(argv0 string, want ...string) bool {
	for _, w := range want {
		if w == "" {
			continue
		}
		if argv0 == w {
			return true
		}
		if !strings.Contains(argv0, "/") && argv0 == filepath.Base(w) {
			return true
		}
	}
	return false
}
