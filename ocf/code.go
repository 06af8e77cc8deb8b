package ocf

import (
	"errors"
	"fmt"
)

// Code is an OCF exit status. The numeric values are part of the OCF
// Resource Agent API and of Pacemaker's behaviour; they never change.
type Code int

// The exit statuses an agent may return. The names follow OCF 1.1
// ("promoted") rather than the older shell names ("master"), and carry no
// Err prefix: they are statuses, not errors. An error carries one (see
// Errorf and CodeOf); ErrNotRunning is the one sentinel error.
const (
	Success                Code = 0   // OCF_SUCCESS: done; monitor: running
	GenericFailure         Code = 1   // OCF_ERR_GENERIC: failed; Pacemaker restarts or moves (soft)
	InvalidArgs            Code = 2   // OCF_ERR_ARGS: parameters do not work on this node (hard: ban here)
	Unimplemented          Code = 3   // OCF_ERR_UNIMPLEMENTED: action not supported
	InsufficientPrivileges Code = 4   // OCF_ERR_PERM: insufficient privilege (hard)
	NotInstalled           Code = 5   // OCF_ERR_INSTALLED: software or files missing on this node (hard)
	Misconfigured          Code = 6   // OCF_ERR_CONFIGURED: parameters invalid in themselves (fatal: stop everywhere)
	NotRunning             Code = 7   // OCF_NOT_RUNNING: monitor: cleanly stopped
	RunningPromoted        Code = 8   // OCF_RUNNING_PROMOTED: monitor: running in the promoted role
	FailedPromoted         Code = 9   // OCF_FAILED_PROMOTED: monitor: promoted but failed
	Degraded               Code = 190 // OCF_DEGRADED: monitor: running, but failures are more likely
	DegradedPromoted       Code = 191 // OCF_DEGRADED_PROMOTED: monitor: promoted and degraded
)

var codeNames = map[Code]string{
	Success:                "OCF_SUCCESS",
	GenericFailure:         "OCF_ERR_GENERIC",
	InvalidArgs:            "OCF_ERR_ARGS",
	Unimplemented:          "OCF_ERR_UNIMPLEMENTED",
	InsufficientPrivileges: "OCF_ERR_PERM",
	NotInstalled:           "OCF_ERR_INSTALLED",
	Misconfigured:          "OCF_ERR_CONFIGURED",
	NotRunning:             "OCF_NOT_RUNNING",
	RunningPromoted:        "OCF_RUNNING_PROMOTED",
	FailedPromoted:         "OCF_FAILED_PROMOTED",
	Degraded:               "OCF_DEGRADED",
	DegradedPromoted:       "OCF_DEGRADED_PROMOTED",
}

// String returns the OCF name of c, or "OCF_UNKNOWN(n)" for a value outside
// the API.
func (c Code) String() string {
	if name, ok := codeNames[c]; ok {
		return name
	}
	return fmt.Sprintf("OCF_UNKNOWN(%d)", int(c))
}

// environmental reports whether c describes this node's environment rather
// than the resource: software or files missing, or parameters that do not
// work here. Pacemaker treats these as "move elsewhere", and the SDK maps
// them by context (stop: 0, probe: 7).
func (c Code) environmental() bool { return c == InvalidArgs || c == NotInstalled }

// ErrNotRunning is returned (possibly wrapped) by an action to say the
// resource is cleanly stopped. It is never confused with a failure: the SDK
// maps it to NotRunning for monitor, to Success for stop, and to
// GenericFailure with a reason for every other action.
var ErrNotRunning = errors.New("not running")

// Error is an error that carries the exit status it should produce. Its
// message is the exit reason Pacemaker shows in crm_mon and pcs status.
type Error struct {
	Code Code
	// Reason is one line for the administrator: what is wrong and how to
	// fix it. It is the whole message; when empty, Err's text is used.
	Reason string
	// Err is the underlying cause, if any, for errors.Is and errors.As.
	Err error
}

func (e *Error) Error() string {
	if e.Reason == "" && e.Err != nil {
		return e.Err.Error()
	}
	return e.Reason
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a reason formatted as by
// fmt.Sprintf. A %w verb wraps the cause, and its text becomes part of the
// reason.
func Errorf(code Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Reason: err.Error(), Err: errors.Unwrap(err)}
}

// CodeOf returns the exit status err stands for: Success for nil,
// NotRunning for ErrNotRunning, the Code of the first *Error in the chain,
// and GenericFailure for any other error.
func CodeOf(err error) Code {
	if err == nil {
		return Success
	}
	var oe *Error
	if errors.As(err, &oe) {
		return oe.Code
	}
	if errors.Is(err, ErrNotRunning) {
		return NotRunning
	}
	return GenericFailure
}

// ReasonOf returns err's text as an exit reason: one printable line of at
// most MaxReason bytes (see OneLine), the whole chain of wrapped messages
// included, so put what the administrator must fix first. It returns ""
// for nil.
func ReasonOf(err error) string {
	if err == nil {
		return ""
	}
	return OneLine(err.Error(), MaxReason)
}
