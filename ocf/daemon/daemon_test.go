package daemon_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
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
// the bind error, as a real daemon does on a busy port), answers an HTTP
// request with 200, answers HUP by logging "reloaded", and exits on TERM.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == testCompanion.Arg {
		os.Exit(daemon.Main(newAgent(), testCompanion))
	}
	if addr := os.Getenv("DAEMON_TEST_ADDR"); addr != "" {
		os.Exit(serve(addr))
	}
	if os.Getenv("DAEMON_TEST_AGENT") == "never-ready" {
		// The agent as Pacemaker runs it (TestStopAfterStartKilled),
		// with a readiness check that never passes.
		if code, ok := ocftest.ServeAgent(newAgentReady(func(ctx context.Context, r *ocf.Request[config], p daemon.Process) error {
			return errors.New("not ready")
		})); ok {
			os.Exit(code)
		}
	}
	os.Exit(m.Run())
}

func serve(addr string) int {
	if pidfile := os.Getenv("DAEMON_TEST_WORKER_PIDFILE"); pidfile != "" {
		// A worker in the daemon's process group, as master-worker
		// daemons have.
		w, err := os.StartProcess("/bin/sleep", []string{"/bin/sleep", "30"}, &os.ProcAttr{})
		if err != nil {
			fmt.Println("fatal:", err)
			return 1
		}
		os.WriteFile(pidfile, []byte(strconv.Itoa(w.Pid)), 0o644)
	}
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
			// An HTTP client gets 200; a TCP check only connects.
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
				}
			}()
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
	User   string
	Worker string
}

// newAgent declares an agent for the test daemon.
func newAgent() *ocf.Agent[config] {
	return newAgentReady(daemon.TCP(func(c *config) string { return c.Listen }))
}

func newAgentReady(ready daemon.Check[config]) *ocf.Agent[config] {
	d := &daemon.Daemon[config]{
		Name: "testd",
		Command: func(ctx context.Context, r *ocf.Request[config]) (daemon.Command, error) {
			return daemon.Command{Path: r.Config.Binary, Param: "binary", Env: []string{"DAEMON_TEST_ADDR=" + r.Config.Listen, "DAEMON_TEST_WORKER_PIDFILE=" + r.Config.Worker}, User: r.Config.User}, nil
		},
		Ready:  ready,
		Reload: daemon.Signal[config](syscall.SIGHUP),
	}
	return d.Agent(&ocf.Agent[config]{
		Name: "testd", Version: "1.0", ShortDesc: "test daemon",
		Params: func(c *config) []ocf.Param {
			return []ocf.Param{
				ocf.String(&c.Binary, "binary", "Binary", ocf.Required()),
				ocf.String(&c.Listen, "listen", "Listen address", ocf.Required(), ocf.Reloadable()),
				ocf.String(&c.User, "user", "User"),
				ocf.String(&c.Worker, "worker", "Pid file of a worker to fork"),
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
	got := must(t, r, ocf.ActionStart, map[string]string{"OCF_RESKEY_CRM_meta_timeout": "600000"}, ocf.GenericFailure)
	if !strings.HasPrefix(got.Reason, "testd exited at start: fatal: listen tcp") || !strings.Contains(got.Reason, "address already in use") {
		t.Errorf("reason %q, want the daemon's last line", got.Reason)
	}
}

// A readiness attempt that hangs (the port is held by a program that
// accepts and never answers) does not keep start from seeing the daemon
// exit.
func TestStartFailsFastWhileReadinessHangs(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	a := newAgentReady(daemon.HTTP(func(c *config) string { return "http://" + c.Listen + "/" }, 200))
	r := ocftest.NewRunner(t, a, ocftest.Config{Name: "testd", Params: map[string]string{"binary": testBinary(t), "listen": addr}})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	got := must(t, r, ocf.ActionStart, map[string]string{"OCF_RESKEY_CRM_meta_timeout": "60000"}, ocf.GenericFailure)
	if !strings.HasPrefix(got.Reason, "testd exited at start: fatal:") {
		t.Errorf("reason %q, want the daemon's exit, not the timeout", got.Reason)
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
// An HTTP readiness check on a local port passes only when the daemon
// itself listens there: another server answering on the port (the daemon
// failing to bind meanwhile) does not make it ready or running.
func TestHTTPReadyNeedsTheDaemonListening(t *testing.T) {
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(foreign.Close)
	a := newAgentReady(daemon.HTTP(func(c *config) string { return "http://" + c.Listen + "/" }, 0))
	dir := t.TempDir()
	runner := func(listen string) *ocftest.Runner {
		return ocftest.NewRunner(t, a, ocftest.Config{Name: "testd", Params: map[string]string{"binary": testBinary(t), "listen": listen},
			Env: map[string]string{"HA_RSCTMP": dir}})
	}
	r := runner(freeAddr(t))
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	must(t, r, ocf.ActionStart, nil, ocf.Success)
	must(t, r, ocf.ActionMonitor, recurring, ocf.Success)
	// The same daemon checked at the foreign server's address.
	got := must(t, runner(foreign.Listener.Addr().String()), ocf.ActionMonitor, recurring, ocf.GenericFailure)
	if !strings.Contains(got.Reason, "another process") {
		t.Errorf("reason %q, want another process named as the listener", got.Reason)
	}
	// A Process without a PID, as docker-service's check of a container's
	// published port: the answer alone decides.
	check := daemon.HTTP(func(c *config) string { return foreign.URL + "/" }, 0)
	if err := check(context.Background(), &ocf.Request[config]{Config: &config{}}, daemon.Process{}); err != nil {
		t.Errorf("check without a pid: %v", err)
	}
}

func TestMonitorNotServing(t *testing.T) {
	bin := testBinary(t)
	addr := freeAddr(t)
	r := newRunner(t, map[string]string{"binary": bin, "listen": addr})
	must(t, r, ocf.ActionStart, nil, ocf.Success)
	// The same daemon watched at another address stands for one that
	// stopped serving.
	got := must(t, r, ocf.ActionMonitor, map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000", "OCF_RESKEY_listen": freeAddr(t)}, ocf.GenericFailure)
	if !strings.HasPrefix(got.Reason, "testd (pid ") || !strings.Contains(got.Reason, "runs but does not serve") {
		t.Errorf("reason %q", got.Reason)
	}
}

func TestLastWords(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, log, want string }{
		{"escape sequences", "old run\n\x1b[31mred\x1b[0m error\n\n  \n", "red error"},
		{"error before a useless last line", "==> Starting\n==> Error starting agent: listen tcp: bind: address already in use\n[INFO] agent: Exit code: code=1\n", "==> Error starting agent: listen tcp: bind: address already in use"},
		{"no error words", "starting\nstopping\n", "stopping"},
		{"Consul's stamp and level", "2026-12-03T16:29:21.178Z [ERROR] agent: Error starting agent: bind\n2026-12-03T16:29:21.178Z [INFO]  agent: Exit code: code=1\n", "agent: Error starting agent: bind"},
		{"HAProxy's level and pid", "[NOTICE]   (1) : haproxy version is 2.6\n[ALERT]    (12345) : Starting frontend f: cannot bind socket\n", "Starting frontend f: cannot bind socket"},
		{"nginx's stamp, level and pid", "2026/12/03 16:29:21 [emerg] 4242#0: bind() to 0.0.0.0:80 failed (98: Address already in use)\n", "bind() to 0.0.0.0:80 failed (98: Address already in use)"},
		{"empty", "\n \n", ""},
	} {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.log), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := daemon.LastWords(path, 0); got != tt.want {
			t.Errorf("%s: LastWords = %q, want %q", tt.name, got, tt.want)
		}
	}
	path := filepath.Join(dir, "offset")
	if err := os.WriteFile(path, []byte("fatal: from the last run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := daemon.LastWords(path, 25); got != "" {
		t.Errorf("LastWords past the offset = %q, want nothing (the last run's words)", got)
	}
	if got := daemon.LastWords(filepath.Join(dir, "none"), 0); got != "" {
		t.Errorf("LastWords of a missing file = %q", got)
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
		if got := r.Run(ocf.ActionStart, nil); got.Code != ocf.GenericFailure {
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

// The daemon runs as the user the command names; an unknown user is this
// node's problem, reported before anything starts.
func TestRunsAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	// The user must reach the binary: not under t.TempDir(), which is
	// private to root.
	dir, err := os.MkdirTemp("/tmp", "daemon-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "testd")
	data, err := os.ReadFile(testBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	r := ocftest.NewRunner(t, newAgent(), ocftest.Config{Name: "testd", Params: map[string]string{"binary": bin, "listen": freeAddr(t), "user": "nobody"},
		Env: map[string]string{"HA_RSCTMP": state}})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	must(t, r, ocf.ActionStart, nil, ocf.Success)
	pid, err := process.ReadPIDFile(filepath.Join(state, "testd-ocftest.pid"))
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "\nUid:\t65534\t") {
		t.Errorf("daemon does not run as nobody (65534):\n%s", status)
	}
	must(t, r, ocf.ActionStop, nil, ocf.Success)

	bad := ocftest.NewRunner(t, newAgent(), ocftest.Config{Name: "testd", Params: map[string]string{"binary": bin, "listen": freeAddr(t), "user": "no-such-user-here"}})
	got := must(t, bad, ocf.ActionValidateAll, nil, ocf.NotInstalled)
	if !strings.HasPrefix(got.Reason, `user: create "no-such-user-here"`) {
		t.Errorf("reason %q", got.Reason)
	}
}

// deadDaemonWithWorker starts the test daemon with a worker in its
// process group, kills the daemon alone with SIGKILL and waits for it to
// be gone, leaving the worker running (still holding its ports, say). It
// returns the runner and the worker's pid.
func deadDaemonWithWorker(t *testing.T) (*ocftest.Runner, int) {
	t.Helper()
	worker := filepath.Join(t.TempDir(), "worker.pid")
	state := t.TempDir()
	r := ocftest.NewRunner(t, newAgent(), ocftest.Config{Name: "testd", Params: map[string]string{"binary": testBinary(t), "listen": freeAddr(t), "worker": worker},
		Env: map[string]string{"HA_RSCTMP": state}})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	must(t, r, ocf.ActionStart, nil, ocf.Success)
	pid, err := process.ReadPIDFile(filepath.Join(state, "testd-ocftest.pid"))
	if err != nil {
		t.Fatal(err)
	}
	wpid, err := process.ReadPIDFile(worker)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(wpid, syscall.SIGKILL) })
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for alive, _ := process.Alive(pid); alive && ctx.Err() == nil; alive, _ = process.Alive(pid) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive, _ := process.Alive(wpid); !alive {
		t.Fatal("the worker died with the daemon; the test proves nothing")
	}
	return r, wpid
}

// A daemon killed with SIGKILL leaves its workers: the monitor reports it
// stopped, and the stop that comes next ends the workers, so the next
// start is not refused.
func TestStopEndsWorkersOfDeadDaemon(t *testing.T) {
	r, wpid := deadDaemonWithWorker(t)
	must(t, r, ocf.ActionMonitor, recurring, ocf.NotRunning)
	must(t, r, ocf.ActionStop, nil, ocf.Success)
	if alive, _ := process.Alive(wpid); alive {
		t.Error("stop left the dead daemon's worker running")
	}
}

// A start that comes without a stop after the daemon was killed (a probe
// after a cleanup reports it stopped) ends the dead daemon's workers first:
// they may hold its ports, so that the new daemon cannot bind, and once
// the new daemon's pid file replaces the old one nothing names their
// group any more, and no stop can end them.
func TestStartEndsWorkersOfDeadDaemon(t *testing.T) {
	r, wpid := deadDaemonWithWorker(t)
	must(t, r, ocf.ActionMonitor, probe, ocf.NotRunning)
	must(t, r, ocf.ActionStart, nil, ocf.Success)
	if alive, _ := process.Alive(wpid); alive {
		t.Error("start left the dead daemon's worker running")
	}
}

// testCompanion writes its config argument to stdout (its log file) and
// runs until told to stop.
var testCompanion = daemon.Companion{Arg: "test-companion", Run: func(ctx context.Context, config string, log *slog.Logger) error {
	fmt.Println("config", config)
	<-ctx.Done()
	return nil
}}

// A companion is the agent's own binary in a hidden mode: started with
// its argument, stopped gracefully by SIGTERM through its context.
func TestCompanion(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "companion.log")
	d := &daemon.Daemon[config]{
		Name: "companion",
		Command: func(ctx context.Context, r *ocf.Request[config]) (daemon.Command, error) {
			cmd, err := testCompanion.Command("/etc/some.json")
			cmd.LogFile = logFile
			return cmd, err
		},
		Ready: func(ctx context.Context, r *ocf.Request[config], p daemon.Process) error {
			if data, _ := os.ReadFile(logFile); !strings.Contains(string(data), "config /etc/some.json") {
				return fmt.Errorf("not yet")
			}
			return nil
		},
	}
	a := d.Agent(&ocf.Agent[config]{Name: "companion", Version: "1", ShortDesc: "companion"})
	r := ocftest.NewRunner(t, a, ocftest.Config{Name: "companion"})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	must(t, r, ocf.ActionStart, nil, ocf.Success)
	must(t, r, ocf.ActionMonitor, recurring, ocf.Success)
	must(t, r, ocf.ActionStop, nil, ocf.Success)
	data, _ := os.ReadFile(logFile)
	if !strings.Contains(string(data), "msg=stopped") {
		t.Errorf("the companion did not stop through its context:\n%s", data)
	}
}

// A test binary without a TestMain that calls Main, started as the
// companion, runs the agent's tests instead: each start there would start
// the test binary again, without end. Command refuses in a process started
// as the companion, so the start fails at once and says what to add.
func TestCompanionStartedByItself(t *testing.T) {
	args := os.Args
	t.Cleanup(func() { os.Args = args })
	os.Args = []string{args[0], testCompanion.Arg, "/etc/other.json"}
	d := &daemon.Daemon[config]{
		Name: "companion",
		Command: func(ctx context.Context, r *ocf.Request[config]) (daemon.Command, error) {
			return testCompanion.Command("/etc/some.json")
		},
	}
	a := d.Agent(&ocf.Agent[config]{Name: "companion", Version: "1", ShortDesc: "companion"})
	r := ocftest.NewRunner(t, a, ocftest.Config{Name: "companion"})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	got := must(t, r, ocf.ActionStart, nil, ocf.GenericFailure)
	if !strings.Contains(got.Reason, "started as the companion but runs the agent") || !strings.Contains(got.Reason, "TestMain") {
		t.Errorf("start reason %q, want it to say the process runs the agent and to call Main from TestMain", got.Reason)
	}
	if _, err := os.Stat(filepath.Join(r.StateDir(), "companion-ocftest.pid")); err == nil {
		t.Errorf("a companion was started")
	}
}

func TestConfigRoundTrip(t *testing.T) {
	type conf struct {
		Routes []string
		Wait   time.Duration
	}
	path := filepath.Join(t.TempDir(), "c.json")
	if err := daemon.WriteConfig(path, conf{Routes: []string{"a", "b"}, Wait: time.Second}); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("configuration file mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
	var got conf
	if err := daemon.ReadConfig(path, &got); err != nil || len(got.Routes) != 2 || got.Wait != time.Second {
		t.Errorf("ReadConfig = %+v, %v", got, err)
	}
	if err := daemon.ReadConfig(filepath.Join(t.TempDir(), "none"), &got); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadConfig of a missing file = %v, want fs.ErrNotExist", err)
	}
}

// Pacemaker kills an agent whose start overran its timeout (SIGKILL, to
// the agent's process group) and then runs stop: the daemon the killed
// start had launched, in a session of its own, must be found by the
// stop and ended, so that the next start does not find its port taken.
func TestStopAfterStartKilled(t *testing.T) {
	bin, addr, dir := testBinary(t), freeAddr(t), t.TempDir()
	params := map[string]string{"binary": bin, "listen": addr}
	killed := ocftest.NewSelfRunner(t, ocftest.Config{Name: "testd", Params: params, Env: map[string]string{
		"DAEMON_TEST_AGENT": "never-ready", "HA_RSCTMP": dir, "OCF_RESOURCE_INSTANCE": "killed",
		"OCF_RESKEY_CRM_meta_timeout": "60000"}})
	// Killed once the daemon serves and its pid file is written, while
	// the start still waits for its readiness check. (Between the
	// daemon's exec and the pid file, a few milliseconds, a kill would
	// leave it untracked; Pacemaker kills at the timeout, long after.)
	pidfile := filepath.Join(dir, "testd-killed.pid")
	serves := func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		_, err = os.Stat(pidfile)
		return err == nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if res, err := killed.Interrupt(ctx, ocftest.Interruption{Action: ocf.ActionStart, At: serves}); err != nil {
		t.Fatalf("the start was not killed while it waited for readiness: %v\n%s", err, res.Stderr)
	}
	r := ocftest.NewRunner(t, newAgent(), ocftest.Config{Name: "testd", Params: params,
		Env: map[string]string{"HA_RSCTMP": dir, "OCF_RESOURCE_INSTANCE": "killed"}})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	pid, err := process.ReadPIDFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	must(t, r, ocf.ActionMonitor, probe, ocf.Success)
	must(t, r, ocf.ActionStop, nil, ocf.Success)
	// The process itself, not its port: another test's listener may
	// take a port as soon as it is free.
	if alive, err := process.Alive(pid); err != nil || alive {
		t.Errorf("the daemon of the killed start (pid %d) still runs after stop (%v)", pid, err)
	}
	must(t, r, ocf.ActionMonitor, probe, ocf.NotRunning)
	must(t, r, ocf.ActionStart, nil, ocf.Success)
}
