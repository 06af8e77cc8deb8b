// Package tinyd is a daemon agent written outside ha-framework's
// repository: its daemon is the agent's own binary run as a companion,
// serving a message over HTTP on a loopback port; the message is reloaded
// without a restart.
package tinyd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/daemon"
)

// Config is the decoded instance parameters.
type Config struct {
	Port    int
	Message string
}

func (c *Config) url() string { return "http://127.0.0.1:" + strconv.Itoa(c.Port) + "/" }

// serveConfig is what the agent writes for its companion.
type serveConfig struct {
	Listen  string
	Message string
}

// Companion is the daemon: this binary run with argv[1] "serve".
var Companion = daemon.Companion{Arg: "serve", Run: serve}

// New returns the agent declaration.
func New() *ocf.Agent[Config] {
	d := &daemon.Daemon[Config]{
		Name: "tinyd",
		Command: func(ctx context.Context, r *ocf.Request[Config]) (daemon.Command, error) {
			return Companion.Command(r.StatePath(".json"))
		},
		Prepare: func(ctx context.Context, r *ocf.Request[Config], cmd daemon.Command) error {
			return writeConfig(r)
		},
		Ready:  daemon.HTTP(func(c *Config) string { return c.url() }, http.StatusOK),
		Deep:   deep,
		Reload: reload,
	}
	return d.Agent(&ocf.Agent[Config]{
		Name: "tinyd", Version: "0.1.0", ShortDesc: "Tiny HTTP daemon",
		LongDesc: "Serves message over HTTP on a loopback port.",
		Params: func(c *Config) []ocf.Param {
			return []ocf.Param{
				ocf.Port(&c.Port, "port", "Loopback TCP port", ocf.Required(), ocf.UniqueGroup("port")),
				ocf.String(&c.Message, "message", "Message served", ocf.Default("hello"), ocf.Reloadable(), ocf.NoSpace()),
			}
		},
	})
}

func writeConfig(r *ocf.Request[Config]) error {
	return daemon.WriteConfig(r.StatePath(".json"), serveConfig{
		Listen: net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Config.Port)), Message: r.Config.Message})
}

func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return string(b), err
}

// deep: the daemon serves the configured message.
func deep(ctx context.Context, r *ocf.Request[Config], p daemon.Process) error {
	got, err := get(ctx, r.Config.url())
	if err != nil {
		return err
	}
	if got != r.Config.Message {
		return ocf.Errorf(ocf.Degraded, "serves %q, not message %q", got, r.Config.Message)
	}
	return nil
}

// reload hands the new message to the daemon and waits until it serves it.
func reload(ctx context.Context, r *ocf.Request[Config], p daemon.Process) error {
	if err := writeConfig(r); err != nil {
		return err
	}
	if err := daemon.Signal[Config](syscall.SIGHUP)(ctx, r, p); err != nil {
		return err
	}
	for {
		if deep(ctx, r, p) == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("message not applied: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// serve is the companion: it serves the message and reads its
// configuration again on SIGHUP.
func serve(ctx context.Context, config string, log *slog.Logger) error {
	var c serveConfig
	if err := daemon.ReadConfig(config, &c); err != nil {
		return err
	}
	var msg atomic.Pointer[string]
	msg.Store(&c.Message)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			var n serveConfig
			if err := daemon.ReadConfig(config, &n); err != nil {
				log.Error("reload", "err", err)
				continue
			}
			msg.Store(&n.Message)
			log.Info("reloaded")
		}
	}()
	l, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, *msg.Load())
	})}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
