package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// Why not ru_maxrss alone: execve(2) folds the high-water mark of the
// address space being replaced into the process's maxrss, and os/exec forks
// with CLONE_VM, so that address space is this Go process's. ru_maxrss of a
// call is therefore never below ocfbench's own RSS at the fork (about 5 MiB)
// whatever the agent uses. peakRSS reads the agent's own high-water mark
// instead, stopping it under ptrace just before it exits, while its address
// space still exists.

// ptraceOExitKill is PTRACE_O_EXITKILL (Linux 3.8), which package syscall
// lacks: the tracee dies with ocfbench rather than stay stopped forever.
const ptraceOExitKill = 1 << 20

// peakRSS runs path with action once under ptrace and returns VmHWM (KiB)
// of the process's post-exec address space, read at PTRACE_EVENT_EXIT, and
// its exit code. Processes the agent spawns are not traced: for a shell
// agent the figure is the shell's own.
func peakRSS(path, action string, env []string) (kib int64, code int, err error) {
	// The tracer is the thread that forked; every ptrace request must come
	// from it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, err
	}
	defer null.Close()
	fd := null.Fd()
	pid, err := syscall.ForkExec(path, []string{path, action}, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{fd, fd, fd},
		Sys:   &syscall.SysProcAttr{Ptrace: true},
	})
	if err != nil {
		return 0, 0, err
	}

	kib = -1
	first := true
	for {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, syscall.WALL, nil); err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return 0, 0, fmt.Errorf("wait4: %w", err)
		}
		switch {
		case ws.Exited():
			if kib < 0 {
				return 0, 0, errors.New("exited without a ptrace exit stop")
			}
			return kib, ws.ExitStatus(), nil
		case ws.Signaled():
			return 0, 0, fmt.Errorf("killed by %v", ws.Signal())
		case !ws.Stopped():
			continue
		}
		sig := 0
		switch {
		case first:
			// The SIGTRAP after execve: from here on, stop at exit.
			first = false
			err = syscall.PtraceSetOptions(pid, syscall.PTRACE_O_TRACEEXIT|ptraceOExitKill)
		case ws.TrapCause() == syscall.PTRACE_EVENT_EXIT:
			var status []byte
			if status, err = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
				kib, err = statusKiB(string(status), "VmHWM")
			}
		default:
			// A signal for the tracee, such as a shell's SIGCHLD: deliver it.
			sig = int(ws.StopSignal())
		}
		if err != nil {
			kill(pid)
			return 0, 0, err
		}
		if err := syscall.PtraceCont(pid, sig); err != nil {
			return 0, 0, fmt.Errorf("ptrace cont: %w", err)
		}
	}
}

// kill ends a traced child and reaps it, continuing it through any stop
// still reported on its way out.
func kill(pid int) {
	syscall.Kill(pid, syscall.SIGKILL)
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, syscall.WALL, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil || ws.Exited() || ws.Signaled():
			return
		}
		syscall.PtraceCont(pid, 0)
	}
}

// statusKiB returns the value of a "Field:   1234 kB" line of a
// /proc/<pid>/status text.
func statusKiB(status, field string) (int64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		num, ok := strings.CutSuffix(strings.TrimSpace(value), " kB")
		if !ok {
			return 0, fmt.Errorf("%s: unexpected value %q", field, value)
		}
		return strconv.ParseInt(num, 10, 64)
	}
	return 0, fmt.Errorf("no %s line", field)
}

// selfRSS is this process's current VmRSS in KiB, or 0 if unknown.
func selfRSS() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	kib, _ := statusKiB(string(status), "VmRSS")
	return kib
}
