package dockerservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/ha-framework/ha-framework/internal/version"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// dial makes an Engine API client for host. It does no I/O: the API
// version is negotiated by the first call, down to what the daemon speaks
// (1.41 for Debian 12's docker.io 20.10; Podman's compatible API says 1.41
// too).
func dial(host string) (*client.Client, error) {
	cli, err := client.New(client.WithHost(host), client.WithAPIVersionNegotiation(),
		client.WithUserAgent("ha-framework-docker-service/"+version.Version))
	if err != nil {
		return nil, ocf.Errorf(ocf.Misconfigured, "parameter docker_host=%q: %w", host, err)
	}
	return cli, nil
}

// unreachable reports whether err means the daemon did not answer: its
// socket is absent or refuses connections (stopped), or a call ran out of
// time (hung). Only then may the agent fall back to what it recorded.
func unreachable(err error) bool {
	return client.IsErrConnectionFailed(err) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) || errors.Is(err, fs.ErrNotExist)
}

// within returns a context that ends after share of the time left to ctx,
// so that a hung daemon leaves time for a fallback.
func within(ctx context.Context, share float64) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithTimeout(ctx, 10*time.Second)
	}
	return context.WithTimeout(ctx, time.Duration(float64(time.Until(dl))*share))
}

// record is what start remembers of the container it ran, in the state
// directory (a tmpfs, emptied at boot): with the daemon unreachable, the
// container's main process tells whether it still runs.
type record struct {
	ID      string `json:"id"`
	Process string `json:"process"` // its process.Identity: pid, start time, boot id
}

func recordPath(r *ocf.Request[Config]) string { return r.StatePath(".json") }

func saveRecord(r *ocf.Request[Config], cid string, pid int) error {
	id, err := process.Identify(pid)
	if err != nil {
		return fmt.Errorf("identifying the container's process %d: %w", pid, err)
	}
	if err := os.MkdirAll(r.Env.StateDir(), 0o755); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	b, _ := json.Marshal(record{ID: cid, Process: id.String()})
	return process.WriteFileAtomic(recordPath(r), b, 0o644)
}

// loadRecord returns the recorded process, and false when there is none
// (or it is unreadable, which amounts to the same: nothing is known).
func loadRecord(r *ocf.Request[Config]) (process.Identity, bool) {
	b, err := os.ReadFile(recordPath(r))
	if err != nil {
		return process.Identity{}, false
	}
	var rec record
	if json.Unmarshal(b, &rec) != nil {
		return process.Identity{}, false
	}
	id, err := parseIdentity(rec.Process)
	return id, err == nil
}

// parseIdentity reads the recorded process; a container's main process
// is never the host's init.
func parseIdentity(s string) (process.Identity, error) {
	id, err := process.ParseIdentity(s)
	if err == nil && id.PID <= 1 {
		err = fmt.Errorf("pid %d", id.PID)
	}
	return id, err
}

// alive reports whether the recorded process still runs (not a newcomer
// that reused its pid, not a zombie).
func alive(id process.Identity) bool {
	same, err := id.Same()
	return same && err == nil
}

// lastLogLine returns the container's last non-empty output line, cut to
// max bytes on a rune boundary with control characters removed, for an
// exit reason; "" if there is none or the logs cannot be read.
func lastLogLine(ctx context.Context, cli *client.Client, id string, max int) string {
	rc, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "20"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var buf bytes.Buffer
	raw, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
	if _, err := stdcopy.StdCopy(&buf, &buf, bytes.NewReader(raw)); err != nil {
		// A container with a TTY streams its output raw.
		buf.Reset()
		buf.Write(raw)
	}
	return lastLine(buf.String(), max)
}

// lastLine returns the last non-blank line of s, made safe for an exit
// reason (escape sequences and control characters removed) and cut to at
// most max bytes; max must be positive.
func lastLine(s string, max int) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := ocf.OneLine(lines[i], max); l != "" {
			return l
		}
	}
	return ""
}

// engineMessage is the useful end of an engine's error for an exit
// reason: the runtime's own words come last, after layers of context
// ("Error response from daemon: failed to create shim task: OCI runtime
// create failed: runc create failed: unable to start container process:
// exec: ...").
func engineMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "Error response from daemon: ")
	if _, rest, ok := strings.Cut(msg, "unable to start container process: "); ok {
		msg = rest
	}
	return msg
}

// isNotFound reports whether the daemon says the object does not exist.
func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// daemonDown wraps an unreachable daemon's error in a short reason.
func daemonDown(host string, err error) error {
	what := "is not reachable"
	if errors.Is(err, context.DeadlineExceeded) {
		what = "did not answer in time"
	}
	return fmt.Errorf("dockerd at %s %s", socketPath(host), what)
}

// inspectByName inspects the container named name. The Engine takes its
// argument as a name, else as an ID or an ID's prefix: a name that is no
// container's but reads as hex ("0", "cafe") would find another container,
// or fail as ambiguous when several IDs start so, and a stop failing on
// that would get the node fenced. Then the Engine is asked by name alone.
// Return values: the container; an error for which isNotFound is true
// when no container has the name; the Engine's error otherwise.
func inspectByName(ctx context.Context, cli *client.Client, name string) (client.ContainerInspectResult, error) {
	res, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	switch {
	case err == nil && res.Container.Name == "/"+name:
		return res, nil
	case err != nil && (isNotFound(err) || unreachable(err)):
		return res, err
	}
	list, lerr := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("name", "^/"+regexp.QuoteMeta(name)+"$")})
	if lerr != nil {
		return client.ContainerInspectResult{}, lerr
	}
	for _, c := range list.Items {
		if slices.Contains(c.Names, "/"+name) {
			return cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		}
	}
	return client.ContainerInspectResult{}, fmt.Errorf("no container named %s: %w", name, cerrdefs.ErrNotFound)
}
