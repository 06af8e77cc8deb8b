// Package exampleagent is ocf:ha-framework:example, the reference agent: a
// pseudo-resource whose only trace is a state file, which exercises every
// feature of the ocf SDK. Copy it to start a new agent.
package exampleagent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/internal/version"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/cluster"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// Config is the decoded instance parameters.
type Config struct {
	Label, Message, StateFile string
	Delay                     time.Duration
	PromotionScore            int
}

// New returns the agent declaration.
func New() *ocf.Agent[Config] {
	return &ocf.Agent[Config]{
		Name: "example", Version: version.Version,
		ShortDesc: "Example stateful pseudo-resource",
		LongDesc:  "A resource that only records its state in a file; the template for agents built with the ha-framework SDK.",
		Params: func(c *Config) []ocf.Param {
			return []ocf.Param{
				ocf.String(&c.Label, "label", "Name recorded in the state file", ocf.Required(),
					ocf.Long("A name recorded in the state file; a deep monitor checks it is still there.")),
				ocf.String(&c.Message, "message", "Message kept in the state file", ocf.Default("hello"), ocf.Reloadable()),
				ocf.String(&c.Message, "greeting", "Old name of message", ocf.Deprecated("message", "Use message.")),
				ocf.String(&c.StateFile, "state", "State file", ocf.UniqueGroup("state"), ocf.AbsolutePath(),
					ocf.Long("Where the state is recorded. Default: example-INSTANCE.state under HA_RSCTMP.")),
				ocf.Duration(&c.Delay, "delay", "Time every action takes", ocf.Default("0")),
				ocf.Int(&c.PromotionScore, "promotion_score", "Promotion score of this node", ocf.Default("10"), ocf.Range(0, 1000000)),
			}
		},
		Validate: func(ctx context.Context, r *ocf.Request[Config]) error {
			// The default depends on the instance, so it is set here
			// rather than declared.
			if r.Config.StateFile == "" {
				r.Config.StateFile = r.StatePath(".state")
			}
			return nil
		},
		Start: func(ctx context.Context, r *ocf.Request[Config]) error {
			if role, err := readRole(r); err == nil && role != "" {
				return nil // already running: start is idempotent
			}
			return write(ctx, r, "unpromoted")
		},
		Stop: func(ctx context.Context, r *ocf.Request[Config]) error {
			if err := sleep(ctx, r.Config.Delay); err != nil {
				return err
			}
			if c, ok := r.Env.Clone(); ok && c.Promotable {
				cli := cluster.CLI{}
				if node, err := cli.LocalNode(ctx, r.Env); err == nil {
					_ = cli.DeletePromotionScore(ctx, r.Env.Instance(), node)
				}
			}
			if err := os.Remove(r.Config.StateFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return ocf.Errorf(ocf.GenericFailure, "removing state file: %w", err)
			}
			return nil
		},
		Monitor:     monitor,
		ReloadAgent: func(ctx context.Context, r *ocf.Request[Config]) error { return rewrite(ctx, r) },
		Promote:     func(ctx context.Context, r *ocf.Request[Config]) error { return write(ctx, r, "promoted") },
		Demote:      func(ctx context.Context, r *ocf.Request[Config]) error { return write(ctx, r, "unpromoted") },
		Notify: func(ctx context.Context, r *ocf.Request[Config]) error {
			n, _ := r.Env.Notification()
			r.Log.Info("notified", "type", n.Type, "operation", n.Operation, "start", len(n.Start), "stop", len(n.Stop))
			return nil
		},
		MigrateTo: func(ctx context.Context, r *ocf.Request[Config]) error {
			_, target, _ := r.Env.Migration()
			r.Log.Info("migrating away", "target", target)
			if err := os.Remove(r.Config.StateFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return ocf.Errorf(ocf.GenericFailure, "removing state file: %w", err)
			}
			return nil
		},
		MigrateFrom: func(ctx context.Context, r *ocf.Request[Config]) error { return write(ctx, r, "unpromoted") },
	}
}

// monitor reads the state file. Depth 10 also checks its label, and a
// promotable clone refreshes this node's promotion score.
func monitor(ctx context.Context, r *ocf.Request[Config]) (ocf.State, error) {
	state, err := os.ReadFile(r.Config.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return ocf.Stopped, nil
	}
	if err != nil {
		return ocf.Stopped, ocf.Errorf(ocf.GenericFailure, "reading state file: %w", err)
	}
	fields := strings.Split(string(state), "\n")
	st := ocf.Running
	if len(fields) > 2 && fields[2] == "promoted" {
		st = ocf.Promoted
	}
	if r.CheckLevel() >= 10 && fields[0] != r.Config.Label {
		return st, ocf.Errorf(ocf.GenericFailure, "state file %s holds label %q, want %q", r.Config.StateFile, fields[0], r.Config.Label)
	}
	if c, ok := r.Env.Clone(); ok && c.Promotable && !r.IsProbe() {
		// The node Pacemaker names (safe on pacemaker_remote nodes, where
		// crm_node cannot answer).
		cli := cluster.CLI{}
		node, err := cli.LocalNode(ctx, r.Env)
		if err == nil {
			err = cli.SetPromotionScore(ctx, r.Env.Instance(), node, r.Config.PromotionScore)
		}
		if err != nil {
			return st, ocf.Errorf(ocf.Degraded, "setting promotion score: %w", err)
		}
	}
	return st, nil
}

func readRole(r *ocf.Request[Config]) (string, error) {
	state, err := os.ReadFile(r.Config.StateFile)
	if err != nil {
		return "", err
	}
	fields := strings.Split(string(state), "\n")
	if len(fields) < 3 {
		return "", fmt.Errorf("state file %s is truncated", r.Config.StateFile)
	}
	return fields[2], nil
}

func write(ctx context.Context, r *ocf.Request[Config], role string) error {
	if err := sleep(ctx, r.Config.Delay); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(r.Config.StateFile), 0o755); err != nil {
		return ocf.Errorf(ocf.InsufficientPrivileges, "creating state directory: %w", err)
	}
	data := fmt.Sprintf("%s\n%s\n%s\n", r.Config.Label, r.Config.Message, role)
	if err := process.WriteFileAtomic(r.Config.StateFile, []byte(data), 0o644); err != nil {
		return ocf.Errorf(ocf.GenericFailure, "writing state file: %w", err)
	}
	return nil
}

// rewrite applies a new message in place, keeping the role: what a real
// agent does when it reloads its service's configuration.
func rewrite(ctx context.Context, r *ocf.Request[Config]) error {
	role, err := readRole(r)
	if err != nil {
		return ocf.Errorf(ocf.GenericFailure, "reload-agent: %w", err)
	}
	r.Log.Info("reloading", "message", r.Config.Message)
	return write(ctx, r, role)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ocf.Errorf(ocf.GenericFailure, "delay of %v exceeds the operation timeout", d)
	case <-time.After(d):
		return nil
	}
}
