package ocf

import (
	"context"
	"fmt"
	"os"
	"time"
)

// dispatch decodes parameters, validates, runs the action and applies
// Pacemaker's context rules to the result. It returns the exit status and
// the error behind it, if any.
func (a *Agent[C]) dispatch(ctx context.Context, r *Request[C], params []Param) (Code, error) {
	deprecated, err := decodeParams(params, r.Env, r.Env.Instance())
	for _, name := range deprecated {
		r.Log.Warn("deprecated parameter in use", "param", name)
	}
	// A stop never fails over its parameters: a failed stop gets the node
	// fenced, and a typo in a changed parameter must not. Stop does its
	// best with what decoded: a parameter whose value is invalid holds its
	// default, or the zero value when it has none, never the raw value.
	if err != nil && r.Action != ActionStop {
		return Misconfigured, err
	}
	if err != nil {
		r.Log.Warn("stopping with invalid parameters", "reason", ReasonOf(err))
	}

	if r.Action == ActionValidateAll {
		// Level 0 asks for syntax only: decoding above was all of it.
		if level, set := r.Env.CheckLevel(); set && level == 0 {
			return Success, nil
		}
	}
	if changesState(r.Action) {
		// The state directory (DefaultStateDir is cleared at boot, and
		// nothing else need create it) exists for every action that may
		// write state, whether or not the agent is Exclusive. An agent
		// that needs it fails later with its own words; one that does not
		// must not fail here.
		if err := os.MkdirAll(r.Env.StateDir(), 0o755); err != nil {
			r.Log.Warn("cannot create the state directory", "dir", r.Env.StateDir(), "err", err)
		}
	}
	if a.Exclusive && changesState(r.Action) {
		unlock, err := r.Lock(ctx)
		if err != nil {
			return CodeOf(err), err
		}
		defer unlock()
	}
	if a.Validate != nil {
		if err := a.Validate(ctx, r); err != nil {
			r.validationErr = err
			switch {
			case r.Action == ActionStop:
				// A stop still runs whatever Validate found: a daemon
				// outlives the removal of its binary or configuration,
				// and only Stop can tell, from its pid file.
				r.Log.Info("stopping despite an incomplete setup", "reason", ReasonOf(err))
			case r.Action == ActionMonitor && CodeOf(err).environmental():
				return a.monitorDespite(ctx, r, err)
			default:
				return a.contextRule(r, CodeOf(err), err)
			}
		}
	}

	switch r.Action {
	case ActionValidateAll:
		return Success, nil
	case ActionStart:
		return a.start(ctx, r)
	case ActionStop:
		return a.stop(ctx, r)
	case ActionMonitor:
		st, err := a.Monitor(ctx, r)
		return a.monitorResult(r, st, err)
	case ActionPromote:
		return a.transition(ctx, r, a.Promote, Promoted)
	case ActionDemote:
		return a.transition(ctx, r, a.Demote, Running)
	case ActionNotify:
		if err := a.Notify(ctx, r); err != nil {
			r.Log.Warn("notify failed; Pacemaker ignores notify results", "err", err)
		}
		return Success, nil
	case ActionReloadAgent:
		if a.ReloadAgent == nil {
			return Success, nil
		}
		return a.simple(ctx, r, a.ReloadAgent)
	case ActionMigrateTo:
		return a.simple(ctx, r, a.MigrateTo)
	case ActionMigrateFrom:
		return a.simple(ctx, r, a.MigrateFrom)
	}
	return Unimplemented, fmt.Errorf("action %s is not implemented", r.Action)
}

// monitorDespite runs Monitor although Validate found something missing
// on this node. A process still running is reported as running (a probe
// that answered "not running" would let Pacemaker start the resource a
// second time elsewhere); otherwise the validation failure stands, mapped
// by context.
func (a *Agent[C]) monitorDespite(ctx context.Context, r *Request[C], verr error) (Code, error) {
	st, err := a.Monitor(ctx, r)
	if code := CodeOf(err); st != Stopped && (err == nil || code == Degraded || code == DegradedPromoted) {
		r.Log.Warn("the resource runs although this node's setup is incomplete", "reason", ReasonOf(verr))
		return a.monitorResult(r, st, err)
	}
	return a.contextRule(r, CodeOf(verr), verr)
}

// contextRule maps a validation failure by action, as Pacemaker expects:
// what is missing on this node means "not running" to a probe and "done"
// to a stop, so a node without the software never blocks recovery.
func (a *Agent[C]) contextRule(r *Request[C], code Code, err error) (Code, error) {
	if !code.environmental() {
		return code, err
	}
	switch {
	case r.Action == ActionStop:
		return Success, err
	case r.probe:
		return NotRunning, err
	}
	return code, err
}

// monitorResult turns a monitor's state and error into an exit status.
func (a *Agent[C]) monitorResult(r *Request[C], st State, err error) (Code, error) {
	code := CodeOf(err)
	switch {
	case err == nil:
		return [...]Code{NotRunning, Success, RunningPromoted}[st], nil
	case code == NotRunning:
		return NotRunning, err
	case code == Degraded || code == DegradedPromoted:
		if st == Promoted {
			return DegradedPromoted, err
		}
		return Degraded, err
	case code.environmental():
		return a.contextRule(r, code, err)
	case st == Promoted && code == GenericFailure:
		return FailedPromoted, err
	}
	return code, err
}

// simple runs an action whose error is its whole result. "Not running" is
// a failure for every action but monitor and stop.
func (a *Agent[C]) simple(ctx context.Context, r *Request[C], f Func[C]) (Code, error) {
	err := f(ctx, r)
	if code := CodeOf(err); code != NotRunning {
		return code, err
	}
	return GenericFailure, fmt.Errorf("%s: resource is not running: %w", r.Action, err)
}

func (a *Agent[C]) start(ctx context.Context, r *Request[C]) (Code, error) {
	if code, err := a.simple(ctx, r, a.Start); code != Success {
		return code, err
	}
	return a.await(ctx, r, "start", func(st State) bool { return st == Running || st == Promoted })
}

func (a *Agent[C]) stop(ctx context.Context, r *Request[C]) (Code, error) {
	err := a.Stop(ctx, r)
	switch code := CodeOf(err); {
	case code == NotRunning:
		// Stop of a stopped resource is a success, never 7.
	case code.environmental():
		// Stop itself says nothing of this resource can exist here.
		r.Log.Info("nothing to stop on this node", "reason", ReasonOf(err))
		return Success, nil
	case code != Success:
		return code, err
	}
	return a.await(ctx, r, "stop", func(st State) bool { return st == Stopped })
}

func (a *Agent[C]) transition(ctx context.Context, r *Request[C], f Func[C], want State) (Code, error) {
	if code, err := a.simple(ctx, r, f); code != Success {
		return code, err
	}
	return a.await(ctx, r, r.Action, func(st State) bool { return st == want })
}

// await polls Monitor until done accepts the state, so that an action
// returns only when a monitor would agree. It fails fast on errors that
// cannot pass by waiting (anything but a generic failure), and with the
// last reason seen when the deadline comes.
func (a *Agent[C]) await(ctx context.Context, r *Request[C], what string, done func(State) bool) (Code, error) {
	mr := *r
	mr.probe = false
	mr.checkLevel = 0
	wait := 50 * time.Millisecond
	var last error
	for {
		st, err := a.Monitor(ctx, &mr)
		code := CodeOf(err)
		switch {
		case code == NotRunning:
			st, err = Stopped, nil
		case code == Degraded || code == DegradedPromoted:
			err = nil // running with a warning is running
		case what == "stop" && code.environmental():
			return Success, nil
		}
		if err == nil && done(st) {
			return Success, nil
		}
		if IsPermanent(err) {
			return CodeOf(err), err
		}
		if err != nil && code != GenericFailure {
			return code, fmt.Errorf("%s: %w", what, err)
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("resource is %v", st)
		}
		select {
		case <-ctx.Done():
			return GenericFailure, fmt.Errorf("%s did not complete before the operation timeout: %w", what, last)
		case <-time.After(wait):
		}
		wait = min(wait*3/2, time.Second)
	}
}

// changesState reports whether action changes the resource, as opposed to
// looking at it.
func changesState(action string) bool {
	switch action {
	case ActionStart, ActionStop, ActionPromote, ActionDemote, ActionReloadAgent, ActionMigrateTo, ActionMigrateFrom:
		return true
	}
	return false
}
