//go:build integration

package haproxydynamic

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// The agent's actions killed as pacemaker-execd kills them at their
// timeout (SIGKILL to the agent's process group), at the points where
// they leave the most half done, each followed by what Pacemaker runs
// next: a probe, stop, start and monitor (ocftest.Recover). One fixture,
// one Consul, for all of them; the killed actions run the test binary as
// the agent (see TestMain), the recovery runs in-process on the same
// state directory.
func TestInterrupted(t *testing.T) {
	f := newFixture(t, nil)
	holding := make(chan struct{})
	t.Cleanup(func() { close(holding) })
	f.register("web-1", holdingBackend(t, holding), false)
	killed := ocftest.NewSelfRunner(t, ocftest.Config{Name: "haproxy-dynamic", Params: f.params,
		Env: map[string]string{"HA_RSCTMP": f.dir, "OCF_RESKEY_CRM_meta_timeout": "30000"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stateFile := func(name string) string {
		return filepath.Join(f.dir, "haproxy-dynamic-ocftest.d", name)
	}
	pid := func(t *testing.T, name string) int {
		t.Helper()
		p, err := process.ReadPIDFile(stateFile(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return p
	}
	interrupt := func(t *testing.T, action string, extra map[string]string, at func() bool) {
		t.Helper()
		ocftest.Interrupted(t, ctx, killed, ocftest.Interruption{Action: action, Extra: extra, At: at})
	}
	// gone checks, after a stop, that the processes a killed action
	// left are gone and their pid files with them.
	gone := func(t *testing.T, pids ...int) func() {
		return func() {
			for _, p := range pids {
				if alive, err := process.Alive(p); alive || err != nil {
					t.Errorf("process %d left by the interrupted action still runs after stop (%v)", p, err)
				}
			}
			for _, name := range []string{"haproxy.pid", "watcher.pid"} {
				if _, err := process.ReadPIDFile(stateFile(name)); err == nil {
					t.Errorf("%s left after stop", name)
				}
			}
		}
	}

	t.Run("start, HAProxy launched, not ready", func(t *testing.T) {
		interrupt(t, ocf.ActionStart, nil, ocftest.Exists(stateFile("haproxy.pid")))
		// HAProxy runs without its watcher: failed, which Pacemaker
		// answers with a stop.
		ocftest.Recover(t, f.runner, []ocf.Code{ocf.GenericFailure}, gone(t, pid(t, "haproxy.pid")))
		f.await("1", 10*time.Second)
	})

	t.Run("stop, HAProxy draining a session", func(t *testing.T) {
		master, watcherPID := pid(t, "haproxy.pid"), pid(t, "watcher.pid")
		hold(t, f.listen)
		// The watcher goes first; then HAProxy's soft stop waits for the
		// held session.
		interrupt(t, ocf.ActionStop, nil, func() bool {
			alive, _ := process.Alive(watcherPID)
			return !alive
		})
		ocftest.Recover(t, f.runner, []ocf.Code{ocf.GenericFailure, ocf.NotRunning}, gone(t, master, watcherPID))
		f.await("1", 10*time.Second)
	})

	t.Run("reload-agent, watcher stopped", func(t *testing.T) {
		master, watcherPID := pid(t, "haproxy.pid"), pid(t, "watcher.pid")
		interrupt(t, ocf.ActionReloadAgent, map[string]string{"OCF_RESKEY_slots": "4"}, func() bool {
			alive, _ := process.Alive(watcherPID)
			return !alive
		})
		ocftest.Recover(t, f.runner, []ocf.Code{ocf.GenericFailure}, gone(t, master, watcherPID))
		f.await("1", 10*time.Second)
	})

	t.Run("start, watcher launched, not ready", func(t *testing.T) {
		f.run(ocf.ActionStop, nil, ocf.Success)
		interrupt(t, ocf.ActionStart, nil, ocftest.Exists(stateFile("watcher.pid")))
		// Both processes run: the probe finds the resource started.
		ocftest.Recover(t, f.runner, []ocf.Code{ocf.Success}, gone(t, pid(t, "haproxy.pid"), pid(t, "watcher.pid")))
		f.await("1", 10*time.Second)
	})
}

// holdingBackend is an HTTP server that answers "1" at once, and holds
// requests for /hold until release is closed.
func holdingBackend(t *testing.T, release <-chan struct{}) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "1")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// hold opens a session through HAProxy that the backend keeps open: the
// response's headers have come, its body has not ended.
func hold(t *testing.T, listen string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: time.Minute}).Get("http://" + listen + "/hold")
	if err != nil {
		t.Fatalf("a session through HAProxy: %v", err)
	}
	go func() {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
}
