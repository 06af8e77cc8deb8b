package ocf_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/ha-framework/ha-framework/ocf"
)

// A complete agent: a resource that exists while its file does.
func Example() {
	type config struct{ Path string }
	agent := &ocf.Agent[config]{
		Name: "file", Version: "1.0.0", ShortDesc: "A file that exists while started",
		Params: func(c *config) []ocf.Param {
			return []ocf.Param{ocf.String(&c.Path, "path", "Absolute path of the file", ocf.Required())}
		},
		Start: func(ctx context.Context, r *ocf.Request[config]) error {
			return os.WriteFile(r.Config.Path, nil, 0o644)
		},
		Stop: func(ctx context.Context, r *ocf.Request[config]) error {
			if err := os.Remove(r.Config.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		},
		Monitor: func(ctx context.Context, r *ocf.Request[config]) (ocf.State, error) {
			if _, err := os.Stat(r.Config.Path); errors.Is(err, fs.ErrNotExist) {
				return ocf.Stopped, nil
			} else if err != nil {
				return ocf.Stopped, ocf.Errorf(ocf.GenericFailure, "checking %s: %w", r.Config.Path, err)
			}
			return ocf.Running, nil
		},
	}
	// In main: os.Exit(agent.Main()). Here, a run without the required parameter:
	code := agent.Run(context.Background(), ocf.Invocation{
		Args: []string{"file", "validate-all"}, Env: ocf.MapEnv(nil), Stderr: os.Stdout,
	})
	fmt.Println(code)
	// Output:
	// level=ERROR msg=result rsc=file() action=validate-all rc=OCF_ERR_CONFIGURED reason="parameter path is required but not set; set it with: pcs resource update RESOURCE path=VALUE"
	// ocf-exit-reason:parameter path is required but not set; set it with: pcs resource update RESOURCE path=VALUE
	// OCF_ERR_CONFIGURED
}
