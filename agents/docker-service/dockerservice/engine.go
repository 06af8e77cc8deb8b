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
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

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
		return nil, ocf.Errorf(ocf.ErrConfigured, "parameter docker_host=%q: %w", host, err)
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
	ID        string `json:"id"`
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"` // field 22 of /proc/PID/stat, against pid reuse
}

func recordPath(r *ocf.Request[Config]) string { return r.StatePath(".json") }

func saveRecord(r *ocf.Request[Config], rec record) error {
	if err := os.MkdirAll(r.Env.StateDir(), 0o755); err != nil {
		return ocf.Errorf(ocf.ErrPerm, "creating state directory: %w", err)
	}
	b, _ := json.Marshal(rec)
	if err := process.WriteFileAtomic(recordPath(r), b, 0o644); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "writing state file: %w", err)
	}
	return nil
}

// loadRecord returns the record, and false when there is none (or it is
// unreadable, which amounts to the same: nothing is known).
func loadRecord(r *ocf.Request[Config]) (record, bool) {
	b, err := os.ReadFile(recordPath(r))
	if err != nil {
		return record{}, false
	}
	var rec record
	if json.Unmarshal(b, &rec) != nil || rec.Pid <= 1 {
		return record{}, false
	}
	return rec, true
}

// alive reports whether the recorded process still runs (and is not a
// newcomer that reused its pid).
func (rec record) alive() bool {
	st, err := startTime(rec.Pid)
	return err == nil && st == rec.StartTime
}

// startTime reads a process's start time in clock ticks since boot (field
// 22 of /proc/PID/stat). A zombie counts as gone.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStartTime(b)
}

// parseStartTime reads field 22 of a /proc/PID/stat line; the command
// name, field 2, may hold spaces and parentheses, so fields are counted
// after its last ')'.
func parseStartTime(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, errors.New("malformed stat")
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, errors.New("zombie")
	}
	return strconv.ParseUint(f[19], 10, 64)
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

// lastLine returns the last non-blank line of s, printable and at most
// max bytes long.
func lastLine(s string, max int) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f || r == utf8.RuneError {
				return -1
			}
			return r
		}, lines[i])
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if len(l) > max {
			cut := max
			for cut > 0 && !utf8.RuneStart(l[cut]) {
				cut--
			}
			l = l[:cut]
		}
		return l
	}
	return ""
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
