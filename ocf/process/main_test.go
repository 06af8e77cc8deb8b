package process

import (
	"context"
	"errors"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

func TestMain(m *testing.M) {
	if file := os.Getenv("PROCESS_TEST_RUN_HELPER"); file != "" {
		// An agent running a helper command, for
		// TestRunHelperDiesWithKilledAgent: the helper records its pid
		// and waits.
		Run(context.Background(), "/bin/sh", "-c", `echo $$ > "$1"; exec /bin/sleep 60`, "sh", file)
		os.Exit(0)
	}
	// As a subreaper, this binary inherits the processes the tests
	// orphan (the sleeps a killed shell leaves behind) and reaps them
	// below, rather than leaving them to an init that, in minimal
	// containers, never reaps.
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	// Returning lets the testing package exit with m.Run's status.
	m.Run()
	if errno == 0 {
		reapChildren()
	}
}

// reapChildren kills and reaps every remaining child of the test binary.
func reapChildren() {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.ppid == os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(-1, &ws, 0, nil)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			return // ECHILD: none left
		}
	}
}
