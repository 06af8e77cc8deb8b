package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// Companion is a daemon that is the agent's own binary run in a hidden
// mode, such as a watcher that follows a directory and applies what it
// sees to the service: the agent ships as one static file, and the
// companion is started, found and stopped like any other daemon (give a
// Daemon a Command from Companion.Command).
//
// The binary's main must hand argv to Main, which runs the companion when
// argv asks for it. In the agent's go test, actions run in-process
// (ocftest.Conformance, Churn, Runner) start the test binary itself as the
// companion: give the test a TestMain that calls Main when os.Args[1] is
// the companion's Arg, as the package's own tests do. Without it the test
// binary would run every test again instead of the companion; Command
// refuses to start the companion from such a process, so that this fails
// at the first start instead of starting test binaries without end.
type Companion struct {
	// Arg is argv[1] that selects the companion. Pacemaker never passes
	// it, and the agent answers it "unimplemented" otherwise.
	Arg string
	// Run runs the companion until ctx ends, which SIGTERM or SIGINT
	// does. config is argv[2], usually the path of the configuration
	// file the agent wrote for it. Its error is logged and makes the
	// process exit with status 1. Main handles no other signal: a
	// companion reloaded by a signal (Signal in the Daemon's Reload)
	// catches it itself with signal.Notify, or the signal ends it.
	Run func(ctx context.Context, config string, log *slog.Logger) error
}

// Command returns the command line that runs the companion with config,
// for a Daemon's Command.
//
// Return values:
//   - (cmd, nil): Path is this binary, Args are Arg and config.
//   - (cmd, err) with an *ocf.Error (NotInstalled): the binary cannot
//     name its own file; cmd still holds Args.
//   - (cmd, err) with an *ocf.Error (GenericFailure): this process was
//     itself started as the companion (os.Args[1] is Arg) but runs the
//     agent, because its main (a test's TestMain) does not call Main;
//     cmd still holds Args.
func (c Companion) Command(config string) (Command, error) {
	cmd := Command{Args: []string{c.Arg, config}}
	if len(os.Args) > 1 && os.Args[1] == c.Arg {
		return cmd, ocf.Errorf(ocf.GenericFailure,
			"%s: started as the companion but runs the agent; call daemon.Main from main (in a go test, from TestMain)", c.Arg)
	}
	self, err := os.Executable()
	if err != nil {
		return cmd, ocf.Errorf(ocf.NotInstalled, "%s: the agent cannot find its own binary: %w", c.Arg, err)
	}
	cmd.Path = self
	return cmd, nil
}

// Main runs the companion that argv asks for (argv[1] is its Arg and
// argv[2] its config), logging to stderr, which the Daemon sends to its
// log file; otherwise it runs agent for the OCF action in argv[1]. It
// returns the exit status, for main to pass to os.Exit.
func Main(agent ocf.AnyAgent, companions ...Companion) int {
	if len(os.Args) == 3 {
		for _, c := range companions {
			if os.Args[1] == c.Arg {
				return c.main(os.Args[2])
			}
		}
	}
	return int(agent.Run(context.Background(), ocf.Invocation{Args: os.Args, Env: ocf.OSEnv(), Stdout: os.Stdout, Stderr: os.Stderr}))
}

func (c Companion) main(config string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With(c.Arg, config)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	log.Info("starting")
	if err := c.Run(ctx, config, log); err != nil {
		log.Error("stopped", "err", fmt.Sprint(err))
		return 1
	}
	log.Info("stopped")
	return 0
}

// WriteConfig writes v as JSON to the configuration file at path of a
// daemon the agent configures, such as a companion: atomically (a
// companion starting meanwhile reads the old file or the new one) and with
// mode 0600, since it may name secret files.
//
// Return values: nil, or the error of encoding v or of writing the file
// (path unchanged then).
func WriteConfig(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("configuration %s: %w", path, err)
	}
	return process.WriteFileAtomic(path, append(data, '\n'), 0o600)
}

// ReadConfig reads into v the configuration WriteConfig wrote at path.
// Fields v does not have are ignored and fields the file lacks keep their
// value, so a file written by another version of the agent still reads.
//
// Return values: nil; an error wrapping fs.ErrNotExist when there is no
// file; another error naming path when it cannot be read or decoded.
func ReadConfig(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := json.NewDecoder(f).Decode(v); err != nil {
		return fmt.Errorf("configuration %s: %w", path, err)
	}
	return nil
}
