// Package tiny is a pseudo-resource written outside ha-framework's
// repository: its only trace is a state file under HA_RSCTMP.
package tiny

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/ha-framework/ha-framework/ocf"
)

// Config is the decoded instance parameters.
type Config struct{ Word string }

// New returns the agent declaration.
func New() *ocf.Agent[Config] {
	return &ocf.Agent[Config]{
		Name: "tiny", Version: "0.1.0", ShortDesc: "Tiny pseudo-resource",
		LongDesc: "A resource that only records a word in a state file.",
		// Exclusive actions take a lock file in the state directory.
		Exclusive: true,
		Params: func(c *Config) []ocf.Param {
			return []ocf.Param{ocf.String(&c.Word, "word", "Word recorded", ocf.Required())}
		},
		Start: func(ctx context.Context, r *ocf.Request[Config]) error {
			return os.WriteFile(r.StatePath(".state"), []byte(r.Config.Word), 0o644)
		},
		Stop: func(ctx context.Context, r *ocf.Request[Config]) error {
			if err := os.Remove(r.StatePath(".state")); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		},
		Monitor: func(ctx context.Context, r *ocf.Request[Config]) (ocf.State, error) {
			if _, err := os.Stat(r.StatePath(".state")); errors.Is(err, fs.ErrNotExist) {
				return ocf.Stopped, nil
			} else if err != nil {
				return ocf.Stopped, err
			}
			return ocf.Running, nil
		},
	}
}
