// Package nofork runs a program that must not create a process, so that a
// test can prove it: the program runs under a seccomp filter that kills it
// with SIGSYS at its first attempt to fork (fork, vfork, clone without
// CLONE_THREAD, clone3). Threads are still allowed, since the Go runtime
// makes them with clone(CLONE_THREAD). The kernel enforces it at the system
// call, so a child that lives a microsecond is caught as surely as a
// daemon, without ptrace (which a container's seccomp profile or Yama may
// refuse) and without tracing's slowdown.
//
// The filter is installed by the test binary itself, re-executed: the
// test package's TestMain calls Main first, and Command builds the
// re-execution. Only linux/amd64 is supported (the system call numbers are
// that architecture's); Command reports an error elsewhere.
//
// clone3 is refused outright: its flags live in memory, which a seccomp
// filter cannot read. Go's runtime makes threads with clone, and os/exec
// uses clone3 or clone(CLONE_VFORK), so for a static Go agent this refuses
// exactly the creation of processes. A C program whose libc makes threads
// with clone3 would be killed by its first thread: use this only on
// programs that make threads with clone, as Go's runtime does.
package nofork

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// envExec names the program the re-executed test binary runs under the
// filter.
const envExec = "HAFW_NOFORK_EXEC"

// Main runs the program named by the environment under the filter when
// this process is a re-execution made by Command; it then never returns.
// Otherwise it returns at once. Call it first in TestMain.
func Main() {
	path, ok := os.LookupEnv(envExec)
	if !ok {
		return
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if len(kv) < len(envExec)+1 || kv[:len(envExec)+1] != envExec+"=" {
			env = append(env, kv)
		}
	}
	err := Exec(path, os.Args[1:], env)
	fmt.Fprintf(os.Stderr, "nofork: %s: %v\n", path, err)
	os.Exit(127)
}

// Command returns a command that runs path with args under the filter,
// through the test binary (which must call Main in TestMain). Set its Env
// as usual; a non-nil Env is extended with what the re-execution needs.
//
// Return values:
//   - (cmd, nil): not started yet.
//   - (nil, err): not linux/amd64, or the test binary cannot be found.
func Command(path string, args ...string) (*exec.Cmd, error) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("nofork supports linux/amd64 only, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	cmd.Env = []string{envExec + "=" + path}
	return cmd, nil
}

// Killed reports whether a finished command was killed by the filter:
// it tried to create a process.
func Killed(ps *os.ProcessState) bool {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGSYS
}

// Exec replaces this process with path under the filter. It returns only
// on failure.
//
// Return values:
//   - never returns on success.
//   - err: the filter could not be installed, or execve failed.
func Exec(path string, args, env []string) error {
	// The filter binds the calling thread, and execve must come from the
	// same one.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_NO_NEW_PRIVS: %w", err)
	}
	prog := filter()
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	return syscall.Exec(path, append([]string{path}, args...), env)
}

// filter is the classic BPF program: any other architecture or the x32
// ABI, fork, vfork, clone3 and clone without CLONE_THREAD kill the
// process; everything else is allowed.
func filter() []unix.SockFilter {
	const (
		offNr   = 0  // seccomp_data.nr
		offArch = 4  // seccomp_data.arch
		offArg0 = 16 // seccomp_data.args[0], low 32 bits (little endian)
		x32Bit  = 0x40000000
	)
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jump := func(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
	}
	const (
		ld   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
	)
	// Jump offsets count the instructions skipped: "kill" is the last
	// instruction, "allow" the one before it.
	return []unix.SockFilter{
		/* 0 */ stmt(ld, offArch),
		/* 1 */ jump(jeq, unix.AUDIT_ARCH_X86_64, 0, 9), // → kill
		/* 2 */ stmt(ld, offNr),
		/* 3 */ jump(jge, x32Bit, 7, 0), // → kill
		/* 4 */ jump(jeq, unix.SYS_FORK, 6, 0), // → kill
		/* 5 */ jump(jeq, unix.SYS_VFORK, 5, 0), // → kill
		/* 6 */ jump(jeq, unix.SYS_CLONE3, 4, 0), // → kill
		/* 7 */ jump(jeq, unix.SYS_CLONE, 0, 2), // → check flags, else → allow
		/* 8 */ stmt(ld, offArg0),
		/* 9 */ jump(jset, unix.CLONE_THREAD, 0, 1), // thread → allow, else → kill
		/* 10 */ stmt(ret, unix.SECCOMP_RET_ALLOW),
		/* 11 */ stmt(ret, unix.SECCOMP_RET_KILL_PROCESS),
	}
}
