package process_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/ha-framework/ha-framework/ocf/process"
)

// The start, monitor and stop actions of an agent for a daemon that stays
// in the foreground. Exit codes are left as comments: they belong to the
// ocf package.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const exe = "/usr/sbin/mydaemon"
	state := "/run/resource-agents"
	pidfile := filepath.Join(state, "mydaemon-rsc1.pid")
	match := process.MatchExecutable(exe)

	// Serialise with other actions on the same resource.
	unlock, err := process.Lock(ctx, filepath.Join(state, "mydaemon-rsc1.lock"))
	if err != nil {
		fmt.Println("lock:", err) // OCF_ERR_GENERIC
		return
	}
	defer unlock()

	// start
	pid, err := process.StartDaemon(ctx, process.Daemon{
		Path:    exe,
		Args:    []string{"--foreground", "--config", "/etc/mydaemon/rsc1.conf"},
		PIDFile: pidfile,
		LogFile: "/var/log/mydaemon/rsc1.log",
	})
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Println("not installed:", err) // OCF_ERR_INSTALLED
		return
	}
	if err != nil {
		fmt.Println("start:", err) // OCF_ERR_GENERIC
		return
	}
	fmt.Println("started", pid)

	// monitor
	switch st, pid, err := process.Status(pidfile, match); {
	case err != nil:
		fmt.Println("monitor:", err) // OCF_ERR_GENERIC
	case st == process.Running:
		fmt.Println("running as", pid) // OCF_SUCCESS
	default:
		fmt.Println(st) // OCF_NOT_RUNNING
	}

	// stop
	st, pid, err := process.Status(pidfile, match)
	if err != nil {
		fmt.Println("stop:", err) // OCF_ERR_GENERIC
		return
	}
	if st == process.Running {
		if err := process.StopGroup(ctx, pid, process.StopOptions{}); err != nil {
			fmt.Println("stop:", err) // OCF_ERR_GENERIC: Pacemaker will fence
			return
		}
	}
	fmt.Println("stopped") // OCF_SUCCESS, also when it was not running
}
