// Package process supervises the daemons that OCF resource agents manage:
// it starts them detached from the agent, tracks them through pid files,
// tells running, stopped and stale apart, stops them with escalation,
// serialises an agent's actions with a lock, and keeps state directories
// safe from files planted by other users (OpenStateDir).
//
// The helpers follow what Pacemaker requires of an agent (see the OCF
// resource agent API, https://github.com/ClusterLabs/OCF-spec/blob/main/ra/1.1/resource-agent-api.md):
//
//   - When an action times out, Pacemaker sends SIGKILL to the agent's
//     whole process group. StartDaemon therefore starts daemons in a new
//     session, so they survive the agent, and with a minimal environment,
//     so the agent's OCF_RESKEY_* parameters do not leak into them.
//   - start must not return before monitor would succeed, and stop must
//     not return before the resource is verified gone. Nothing here waits
//     without a context.Context, and Stop gives up (and says so with
//     ErrStillRunning) before the deadline rather than overrun it, since
//     an overrun costs the node a fence anyway, without the agent's word.
//   - monitor must tell "cleanly stopped" from "failed". Status returns
//     Stopped (no pid file), Stale (a pid file naming no live process of
//     ours, including zombies and reused pids) and Running, and an error
//     with Unknown when it cannot tell.
//
// A typical agent starts with StartDaemon, then polls Status until
// Running (or until the daemon is gone, to fail fast); monitors with
// Status; stops with ReadPIDFile and Stop or StopGroup; and holds Lock
// around actions that must not overlap.
//
// # Stability
//
// The exported identifiers, their documented return cases, the pid file
// format (decimal pid and a newline, mode 0644) and the lock file
// semantics (flock(2) on a file that is never removed) are stable. Error
// texts are not: test errors with errors.Is against the documented
// sentinels (ErrStillRunning, ErrInvalidPIDFile, ErrUnsafeStateDir, fs.ErrNotExist,
// context.DeadlineExceeded).
//
// The package is Linux-only: it relies on /proc, setsid(2), flock(2) and,
// where available, pidfds. It keeps no global state, starts no goroutine
// that outlives a call, and never logs: callers get errors and log them.
package process
