// Package daemon makes an OCF resource agent for a long-running program a
// declaration: the agent says how to build the command line from its
// configuration, how to tell the daemon is ready (a TCP connection, an
// HTTP status, a unix socket, or any function), what a deep check (OCF
// monitor depth 10) looks at, and how to reload; the package supplies
// start, stop, monitor, reload-agent and the validation of the command,
// following what Pacemaker requires:
//
//   - Start spawns the daemon detached from the agent (its own session,
//     a clean environment, output to a log file, a pid file and the
//     process's identity beside it), returns once Ready succeeds, and
//     fails at once, quoting the last line the daemon wrote, when the
//     daemon exits first; the failure is ocf.Permanent, so the SDK does
//     not wait out the operation's timeout.
//   - Monitor finds the daemon by the identity recorded at start (pid,
//     start time, boot), so a reused pid is never taken for it, and a
//     daemon whose binary or configuration was removed is still found,
//     by probes too.
//   - Stop runs BeforeStop, sends StopSignal to the daemon's process
//     group, then SIGKILL, always before the deadline, and never to a
//     process that is not the one started.
//
// Every action stays the agent's to override: Agent fills in only the
// fields of ocf.Agent the agent left unset, and the Daemon's methods can
// be called from the agent's own functions.
//
// See the package example for a complete agent.
package daemon
