package daemon_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/daemon"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// TestMain makes the test binary a tiny TCP daemon when started with
// DAEMON_TEST_ADDR in its environment: it listens there (or exits 1 with
// the bind error, as a real daemon does on a busy port), answers HUP by
// logging "reloaded", and exits on TERM.
func TestMain(m *testing.M) {
	if addr := os.Getenv("DAEMON_TEST_ADDR"); addr != "" {
		os.Exit(serve(addr))
	}
	os.Exit(m.Run())
}

func serve(addr string) int {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("starting up")
		fmt.Println("fatal:", err)
		return 1
	}
	fmt.Println("listening on", l.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for s := range sig {
		if s == syscall.SIGTERM {
			return 0
		}
		fmt.Println("reloaded")
	}
	return 0
}

type config struct {
	Binary string
	Listen string
}

// newAgent declares an agent for the test daemon.
func newAgent() *ocf.Agent[config] {
	d := &daemon.Daemon[config]{
		Name: "testd",
		Command: func(ctx context.Context, r *ocf.Request[config]) (daemon.Command, error) {
			return daemon.Command{Path: r.Config.Binary, Param: "binary", Env: []string{"DAEMON_TEST_ADDR=" + r.Config.Listen}}, nil
		},
		Ready:  daemon.TCP(func(c *config) string { return c.Listen }),
		Reload: daemon.Signal[config](syscall.SIGHUP),
	}
	return d.Agent(&ocf.Agent[config]{
		Name: "testd", Version: "1.0", ShortDesc: "test daemon",
		Params: func(c *config) []ocf.Param {
			return []ocf.Param{
				ocf.String(&c.Binary, "binary", "Binary", ocf.Required()),
				ocf.String(&c.Listen, "listen", "Listen address", ocf.Required(), ocf.Reloadable()),
			}
		},
	})
}

// testBinary copies the test binary to a directory of the test's own, so
// that a test may remove it.
func testBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "testd")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newRunner(t *testing.T, params map[string]string) *ocftest.Runner {
	t.Helper()
	r := ocftest.NewRunner(t, newAgent(), ocftest.Config{Name: "testd", Params: params})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	return r
}

var (
	probe     = map[string]string{}
	recurring = map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"}
)

func must(t *testing.T, r *ocftest.Runner, action string, extra map[string]string, want ocf.Code) ocftest.Result {
	t.Helper()
	got := r.Run(action, extra)
	if got.Code != want {
		t.Fatalf("%s = %v (%q), want %v\n%s", action, got.Code, got.Reason, want, got.Stderr)
	}
	return got
}

func TestConformance(t *testing.T) {
	ocftest.Conformance(t, newAgent(), ocftest.Config{Name: "testd", Params: map[string]string{"binary": testBinary(t), "listen": freeAddr(t)}})
}

func TestLifecycle(t *testing.T) {
	addr := freeAddr(t)
	r := newRunner(t, map[string]string{"binary": testBinary(t), "listen": addr})
	must(t, r, ocf.ActionMonitor, probe, ocf.NotRunning)
	must(t, r, ocf.ActionStart, nil, ocf.Success)
	// Start returned once the daemon accepts connections.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("start returned before the daemon listened: %v", err)
	}
	c.Close()
	must(t, r, ocf.ActionMonitor, recurring, ocf.Success)
	must(t, r, ocf.ActionReloadAgent, nil, ocf.Success)
	must(t, r, ocf.ActionStop, nil, ocf.Success)
	must(t, r, ocf.ActionMonitor, recurring, ocf.NotRunning)
	must(t, r, ocf.ActionStop, nil, ocf.Success)
}

// A daemon that exits at start (its port is taken) fails the start at
// once, with its last line in the reason, long before the timeout.
func TestStartFailsFast(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	r := newRunner(t, map[string]string{"binary": testBinary(t), "listen": busy.Addr().String()})
	got := must(t, r, ocf.ActionStart, map[string]string{"OCF_RESKEY_CRM_meta_timeout": "600000"}, ocf.ErrGeneric)
	if !strings.HasPrefix(got.Reason, "testd exited at start: fatal: listen tcp") || !strings.Contains(got.Reason, "address already in use") {
		t.Errorf("reason %q, want the daemon's last line", got.Reason)
	}
}

// A probe finds a running daemon whose binary has been removed, and stop
// ends it: answering "not running" would let Pacemaker start it twice.
func TestBinaryRemovedUnderRunningDaemon(t *testing.T) {
	bin := testBinary(t)
	r := newRunner(t, map[string]string{"binary": bin, "listen": freeAddr(t)})
	must(t, r, ocf.ActionStart, nil, ocf.Success)
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	must(t, r, ocf.ActionMonitor, probe, ocf.Success)
	must(t, r, ocf.ActionStop, nil, ocf.Success)
	must(t, r, ocf.ActionMonitor, probe, ocf.NotRunning)
}

// A pid file whose pid now belongs to another process: probe says not
// running, and stop never signals that process, even with the binary gone.
func TestStrangerHoldsThePID(t *testing.T) {
	bin := testBinary(t)
	state := t.TempDir()
	params := map[string]string{"binary": bin, "listen": freeAddr(t)}
	r := ocftest.NewRunner(t, newAgent(), ocftest.Config{Name: "testd", Params: params, Env: map[string]string{"HA_RSCTMP": state}})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	must(t, r, ocf.ActionStart, nil, ocf.Success)
	pidfile := filepath.Join(state, "testd-ocftest.pid")
	pid, err := process.ReadPIDFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := process.Stop(ctx, pid, process.StopOptions{Signal: syscall.SIGKILL}); err != nil {
		t.Fatal(err)
	}
	// A stranger gets the pid file's number: the test makes it so by
	// writing the stranger's pid where the daemon's was, identity kept.
	stranger, err := process.StartDaemon(ctx, process.Daemon{Path: "/bin/sleep", Args: []string{"30"}})
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(stranger, syscall.SIGKILL)
	id, _ := process.Identify(pid)
	id.PID = stranger
	if err := process.WriteFileAtomic(pidfile+process.IdentityFileSuffix, []byte(fmt.Sprintf("%d 1 %s\n", stranger, id.Boot)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := process.WriteFileAtomic(pidfile, []byte(fmt.Sprintf("%d\n", stranger)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	must(t, r, ocf.ActionMonitor, probe, ocf.NotRunning)
	must(t, r, ocf.ActionStop, nil, ocf.Success)
	if alive, _ := process.Alive(stranger); !alive {
		t.Error("stop signalled the process that now holds the pid")
	}
}

// The ready check's own errors name the daemon and the address.
func TestMonitorNotServing(t *testing.T) {
	bin := testBinary(t)
	addr := freeAddr(t)
	r := newRunner(t, map[string]string{"binary": bin, "listen": addr})
	must(t, r, ocf.ActionStart, nil, ocf.Success)
	// The same daemon watched at another address stands for one that
	// stopped serving.
	got := must(t, r, ocf.ActionMonitor, map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000", "OCF_RESKEY_listen": freeAddr(t)}, ocf.ErrGeneric)
	if !strings.HasPrefix(got.Reason, "testd (pid ") || !strings.Contains(got.Reason, "runs but does not serve") {
		t.Errorf("reason %q", got.Reason)
	}
}

func TestLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("old run\n\x1b[31mred\x1b[0m error\n\n  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := daemon.LastLine(path, 0); got != "red error" {
		t.Errorf("LastLine = %q", got)
	}
	if got := daemon.LastLine(path, 100); got != "" {
		t.Errorf("LastLine past the end = %q, want none", got)
	}
	if got := daemon.LastLine(filepath.Join(t.TempDir(), "none"), 0); got != "" {
		t.Errorf("LastLine of a missing file = %q", got)
	}

}

// BenchmarkStartFailure measures a start whose daemon exits at once (its
// port is taken): spawn, exit, and the start's failure. Compare with
// BenchmarkDaemonExit, the daemon's own time from spawn to exit.
func BenchmarkStartFailure(b *testing.B) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer busy.Close()
	self, _ := os.Executable()
	r := ocftest.NewRunner(b, newAgent(), ocftest.Config{Name: "testd", Params: map[string]string{"binary": self, "listen": busy.Addr().String()}})
	for b.Loop() {
		if got := r.Run(ocf.ActionStart, nil); got.Code != ocf.ErrGeneric {
			b.Fatalf("start = %v", got.Code)
		}
	}
}

// BenchmarkDaemonExit is the floor of BenchmarkStartFailure: the same
// process run to its exit by a plain fork, exec and wait.
func BenchmarkDaemonExit(b *testing.B) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer busy.Close()
	self, _ := os.Executable()
	for b.Loop() {
		p, err := os.StartProcess(self, []string{self}, &os.ProcAttr{Env: []string{"DAEMON_TEST_ADDR=" + busy.Addr().String()}})
		if err != nil {
			b.Fatal(err)
		}
		p.Wait()
	}
}
