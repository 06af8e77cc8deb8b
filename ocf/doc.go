// Package ocf is a software development kit for Pacemaker resource agents
// that follow the OCF Resource Agent API 1.1
// (https://github.com/ClusterLabs/OCF-spec/blob/main/ra/1.1/resource-agent-api.md).
//
// An agent is declared, not programmed against the protocol: an Agent
// lists typed parameters once, and that declaration drives the decoding of
// OCF_RESKEY_* variables, validate-all, and the OCF 1.1 meta-data XML. The
// agent supplies Start, Stop and Monitor (and optionally promote, demote,
// notify, reload-agent and migration); the SDK dispatches on argv[1] and
// applies Pacemaker's rules around them:
//
//   - A probe is a monitor without an interval (OCF_RESKEY_CRM_meta_interval
//     unset or 0). Software or configuration missing on this node
//     (NotInstalled, InvalidArgs) reads as "not running" to a probe, as success to
//     a stop, and as an error to a recurring monitor, a start and validate-all;
//     but a monitor (probe or recurring) first asks Monitor, and a resource
//     that still runs (a daemon outlives the removal of its binary) is
//     reported running.
//   - Parameters that are invalid in themselves give Misconfigured with a
//     one-line exit reason naming the parameter, its value, and what is
//     allowed; except on stop, which runs with what it could decode (a
//     failed stop gets the node fenced, and a typo must not).
//   - Every action gets a context whose deadline is the operation timeout
//     (OCF_RESKEY_CRM_meta_timeout) less a margin, so the agent finishes
//     before Pacemaker kills its process group.
//   - Start, promote and demote return only when Monitor agrees; stop only
//     when Monitor reports the resource stopped.
//   - Exit reasons go to stderr as ${OCF_EXIT_REASON_PREFIX}<one line>; logs
//     go where HA_LOGFACILITY, HA_LOGFILE, HA_DEBUGLOG and HA_debug say;
//     trace_ra and trace_file (reloadable on every agent) write a debug
//     trace of each action: to trace_file (or OCF_TRACE_FILE), else to a
//     new file per action under $HA_VARLIB/trace_ra/AGENT/
//     (/var/lib/heartbeat/trace_ra/AGENT/ when HA_VARLIB is unset).
//   - meta-data always prints XML and exits 0, as any user.
//
// # Stability
//
// The exit codes, the names and meanings of the parameters an agent
// declares, and the meta-data an agent prints are its contract with
// clusters and are kept stable; a renamed parameter stays as a Deprecated
// alias. Log text is not part of the contract.
//
// Subpackages: process (daemons, pid files, stop escalation, locks),
// cluster (Pacemaker's command-line tools under a deadline) and ocftest
// (the conformance harness for an agent's own tests).
package ocf
