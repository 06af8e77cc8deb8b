package process

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// Identity tells one process apart from any later process that gets the
// same pid: a pid is reused as soon as its process has been reaped, but
// the start time, counted in clock ticks since boot, and the boot itself
// never repeat. Unlike wall-clock times, neither moves when the clock is
// set.
type Identity struct {
	PID int
	// Start is field 22 of /proc/PID/stat: when the process started, in
	// clock ticks since boot. It survives execve, so a daemon that
	// re-executes itself keeps its identity.
	Start uint64
	// Boot is the kernel's boot ID (/proc/sys/kernel/random/boot_id).
	Boot string
}

// IdentityFileSuffix is appended to a pid file's path to name the file
// where StartDaemon records the daemon's Identity, next to the pid file,
// whose format ("PID\n") stays what other tools expect.
const IdentityFileSuffix = ".identity"

// Identify returns the identity of the live process pid.
//
// Return values:
//   - (id, nil): the process exists (it may be a zombie).
//   - (Identity{}, err) with errors.Is(err, fs.ErrNotExist): there is no
//     such process.
//   - (Identity{}, err): pid is invalid, or /proc could not be read.
func Identify(pid int) (Identity, error) {
	if err := checkPID(pid); err != nil {
		return Identity{}, err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Identity{}, err
	}
	start, err := parseStartTime(data)
	if err != nil {
		return Identity{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	boot, err := bootID()
	if err != nil {
		return Identity{}, err
	}
	return Identity{PID: pid, Start: start, Boot: boot}, nil
}

// parseStartTime returns field 22 (starttime) of /proc/PID/stat.
func parseStartTime(data []byte) (uint64, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("malformed stat: no closing parenthesis after comm")
	}
	// Fields after comm start at field 3; starttime is field 22.
	fields := strings.Fields(string(data[i+1:]))
	const idx = 22 - 3
	if len(fields) <= idx {
		return 0, fmt.Errorf("malformed stat: %d fields after comm", len(fields))
	}
	n, err := strconv.ParseUint(fields[idx], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed stat: starttime: %w", err)
	}
	return n, nil
}

func bootID() (string, error) {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("boot id: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// String formats the identity as stored in an identity file.
func (id Identity) String() string {
	return fmt.Sprintf("%d %d %s", id.PID, id.Start, id.Boot)
}

// ParseIdentity reads what Identity.String wrote: "PID START BOOT".
//
// Return values:
//   - (id, nil): three fields, a valid pid and a start time.
//   - (Identity{}, err): anything else; the message says what.
func ParseIdentity(s string) (Identity, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return Identity{}, errors.New("malformed identity: want PID START BOOT")
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || checkPID(pid) != nil {
		return Identity{}, fmt.Errorf("malformed identity: pid %q", f[0])
	}
	start, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return Identity{}, fmt.Errorf("malformed identity: start %q", f[1])
	}
	return Identity{PID: pid, Start: start, Boot: f[2]}, nil
}

// ReadIdentity returns the identity recorded for the pid file at pidfile
// (in pidfile+IdentityFileSuffix) if it is the identity of pid.
//
// Return values:
//   - (id, true): an identity of pid is recorded.
//   - (Identity{}, false): none is, or the file is unreadable, malformed,
//     or about another pid (left by an earlier daemon): the caller must
//     then identify the process in other ways (a Matcher).
func ReadIdentity(pidfile string, pid int) (Identity, bool) {
	data, err := readSmall(pidfile + IdentityFileSuffix)
	if err != nil {
		return Identity{}, false
	}
	id, err := ParseIdentity(string(data))
	if err != nil || id.PID != pid {
		return Identity{}, false
	}
	return id, true
}

// Same reports whether the process id.PID is still the process id names
// and has not exited.
//
// Return values:
//   - (true, nil): it is the same process, and not a zombie.
//   - (false, nil): it has exited, is a zombie, or its pid now belongs to
//     another process.
//   - (false, err): /proc could not be read.
func (id Identity) Same() (bool, error) {
	now, err := Identify(id.PID)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if now != id {
		return false, nil
	}
	return notZombie(id.PID), nil
}
