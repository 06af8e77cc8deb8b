//go:build integration

package dockerservice

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// testDaemon is a container engine of the test's own serving the Docker
// Engine API: dockerd, or Podman's API service. It has its own data, exec
// root, pid file and socket, no bridge and no iptables rules, so that
// tests can stop, freeze and restart it without disturbing any other
// engine on the machine.
type testDaemon struct {
	Kind        string // engineDocker or enginePodman
	Host        string // unix:///run/hafw-test-docker-N.sock
	base        string // holds everything but the socket
	sock        string
	data, exec  string
	log         string
	liveRestore bool
	insecure    string // a registry Podman may reach over plain HTTP
	cmd         *exec.Cmd
	done        chan struct{}
}

var daemonSeq atomic.Int32

// The engines the integration tests run against.
const (
	engineDocker = "dockerd"
	enginePodman = "podman"
)

// forEachEngine runs test once per engine, as a subtest named by it.
func forEachEngine(t *testing.T, test func(t *testing.T, kind string)) {
	for _, kind := range []string{engineDocker, enginePodman} {
		t.Run(kind, func(t *testing.T) { test(t, kind) })
	}
}

// newDaemon is newEngine for dockerd.
func newDaemon(t *testing.T, liveRestore bool) *testDaemon {
	t.Helper()
	return newEngine(t, engineDocker, liveRestore)
}

// newEngine starts an engine of the given kind for this test alone, and
// stops it (removing every container it holds) when the test ends;
// liveRestore applies to dockerd (Podman's containers never depend on its
// API service). It skips, saying why, without the engine or root.
func newEngine(t *testing.T, kind string, liveRestore bool) *testDaemon {
	t.Helper()
	d := launchEngine(t, kind, liveRestore)
	t.Cleanup(func() {
		d.Thaw()
		if !d.running() {
			d.start(t)
		}
		d.shutdown()
		if t.Failed() {
			if b, err := os.ReadFile(d.log); err == nil {
				t.Logf("%s log (last 3000 bytes):\n%s", kind, b[max(0, len(b)-3000):])
			}
		}
		d.removeBase()
	})
	return d
}

// shared holds the engines that tests which never stop their engine
// share, with the test images built once; TestMain shuts them down.
var shared struct {
	sync.Mutex
	engines map[string]*testDaemon
}

// sharedEngine returns the shared engine of the given kind, with the test
// images, starting it on first use.
func sharedEngine(t *testing.T, kind string) *testDaemon {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if d := shared.engines[kind]; d != nil {
		return d
	}
	d := launchEngine(t, kind, false)
	if shared.engines == nil {
		shared.engines = map[string]*testDaemon{}
	}
	shared.engines[kind] = d
	d.buildImages(t)
	return d
}

func TestMain(m *testing.M) {
	// The test binary serves as the agent for the runners of
	// ocftest.NewSelfRunner (the interruption tests).
	if code, ok := ocftest.ServeAgent(New()); ok {
		os.Exit(code)
	}
	code := m.Run()
	for _, d := range shared.engines {
		d.shutdown()
		if code != 0 {
			if b, err := os.ReadFile(d.log); err == nil {
				fmt.Fprintf(os.Stderr, "%s log (last 3000 bytes):\n%s\n", d.Kind, b[max(0, len(b)-3000):])
			}
		}
		d.removeBase()
	}
	if serverBin != "" {
		os.RemoveAll(filepath.Dir(serverBin))
	}
	os.Exit(code)
}

func launchEngine(t testing.TB, kind string, liveRestore bool) *testDaemon {
	t.Helper()
	if _, err := exec.LookPath(kind); err != nil {
		t.Skipf("%s not installed (apt-get install docker.io podman)", kind)
	}
	if os.Geteuid() != 0 {
		t.Skipf("%s needs root", kind)
	}
	n := fmt.Sprintf("%d-%d", os.Getpid(), daemonSeq.Add(1))
	base, err := os.MkdirTemp("", "hafwd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &testDaemon{
		Kind: kind, base: base,
		sock: "/run/hafw-test-" + map[string]string{engineDocker: "docker", enginePodman: "podman"}[kind] + "-" + n + ".sock",
		data: filepath.Join(base, "data"), exec: filepath.Join(base, "x"), log: filepath.Join(base, "engine.log"),
		liveRestore: liveRestore,
	}
	d.Host = "unix://" + d.sock
	d.start(t)
	return d
}

// removeBase unmounts what the engine left mounted under its directory
// (dockerd's network namespace file, Podman's overlay) and removes it.
func (d *testDaemon) removeBase() {
	data, _ := os.ReadFile("/proc/self/mounts")
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], d.base+"/") {
			mounts = append(mounts, f[1])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
	os.RemoveAll(d.base)
}

// shutdown removes every container and ends the engine (SIGKILL after
// 40 s).
func (d *testDaemon) shutdown() {
	if !d.running() {
		return
	}
	d.Thaw()
	if cli, err := client.New(client.WithHost(d.Host), client.WithAPIVersionNegotiation()); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true}); err == nil {
			for _, c := range list.Items {
				cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
		}
		cancel()
		cli.Close()
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(40 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

func (d *testDaemon) start(t testing.TB) {
	t.Helper()
	args := []string{"--data-root", d.data, "--exec-root", d.exec, "--pidfile", d.exec + ".pid",
		"-H", d.Host, "--bridge=none", "--iptables=false", "--ip6tables=false"}
	if d.liveRestore {
		args = append(args, "--live-restore")
	}
	if d.Kind == enginePodman {
		// No systemd here: cgroupfs, and events in a file.
		args = []string{"--root", d.data, "--runroot", d.exec, "--cgroup-manager=cgroupfs", "--events-backend=file",
			"system", "service", "--time=0", d.Host}
	}
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(d.Kind, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if d.Kind == enginePodman {
		// Podman raises a container's open-files and process limits to
		// its own maximum, which fails where the engine's hard limits are
		// lower (inside a container, as in CI): keep the engine's limits.
		var files syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &files); err != nil {
			t.Fatal(err)
		}
		// The process limit the engine reports is not what runc may set
		// in some sandboxes (96369 refused, 1000 accepted): a test
		// service needs few.
		conf := filepath.Join(filepath.Dir(d.data), "containers.conf")
		text := fmt.Sprintf("[containers]\ndefault_ulimits = [\"nofile=%d:%d\", \"nproc=4096:4096\"]\n", files.Max, files.Max)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		d.cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
		if d.insecure != "" {
			regs := filepath.Join(filepath.Dir(d.data), "registries.conf")
			text := fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", d.insecure)
			if err := os.WriteFile(regs, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			d.cmd.Env = append(d.cmd.Env, "CONTAINERS_REGISTRIES_CONF="+regs)
		}
	}
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func() { d.cmd.Wait(); logf.Close(); close(d.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		cli, err := client.New(client.WithHost(d.Host))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = cli.Ping(ctx, client.PingOptions{})
			cancel()
			cli.Close()
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) || !d.running() {
			b, _ := os.ReadFile(d.log)
			t.Fatalf("%s did not come up: %v\n%s", d.Kind, err, b[max(0, len(b)-2000):])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// trustRegistry lets the engine use the registry at addr (127.0.0.1:PORT)
// over plain HTTP: dockerd does so for 127.0.0.0/8 by itself, Podman is
// told in its registries.conf and restarted.
func (d *testDaemon) trustRegistry(t testing.TB, addr string) {
	t.Helper()
	if d.Kind != enginePodman {
		return
	}
	d.insecure = addr
	d.Stop(t)
	d.start(t)
}

func (d *testDaemon) running() bool {
	if d.done == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// Stop ends the engine with SIGTERM, as its service manager would, and
// waits for it (SIGKILL after 40 s).
func (d *testDaemon) Stop(t testing.TB) {
	t.Helper()
	if !d.running() {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(40 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		t.Errorf("%s ignored SIGTERM for 40 s", d.Kind)
	}
}

// Freeze stops dockerd with SIGSTOP: its socket still accepts connections
// but nothing answers, as with a hung daemon.
func (d *testDaemon) Freeze(t testing.TB) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGSTOP)
	// Every thread must have stopped before the test asks anything.
	deadline := time.Now().Add(5 * time.Second)
	for {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", d.cmd.Process.Pid))
		stopped := len(tasks) > 0
		for _, task := range tasks {
			b, err := os.ReadFile(task)
			if i := bytes.LastIndexByte(b, ')'); err != nil || i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
				stopped = false
			}
		}
		if stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not stop on SIGSTOP", d.Kind)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Thaw undoes Freeze.
func (d *testDaemon) Thaw() {
	if d.running() {
		d.cmd.Process.Signal(syscall.SIGCONT)
	}
}

func (d *testDaemon) Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.New(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

var (
	serverOnce sync.Once
	serverBin  string
	serverErr  error
)

// serverBinary builds testdata/server static, once per test process.
func serverBinary(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hafw-server-")
		if err != nil {
			serverErr = err
			return
		}
		serverBin = filepath.Join(dir, "server")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-ldflags", "-s -w", "-o", serverBin, "./testdata/server")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			serverErr = fmt.Errorf("building the test server: %v\n%s", err, out)
		}
	})
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return serverBin
}

// The test images: the test server FROM scratch, with and without a
// HEALTHCHECK (every second, one failure is unhealthy).
const (
	imageHealth = "hafw-test-server:health"
	imagePlain  = "hafw-test-server:plain"
	// imageRegistrator carries Registrator's labels.
	imageRegistrator = "hafw-test-server:registrator"
)

// buildImages builds the test images in d, through the Engine API's
// classic builder (no registry, no BuildKit).
func (d *testDaemon) buildImages(t testing.TB) {
	t.Helper()
	bin, err := os.ReadFile(serverBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	for tag, health := range map[string]string{
		imageHealth:      `HEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD ["/server", "-check"]` + "\n",
		imagePlain:       "",
		imageRegistrator: `LABEL SERVICE_NAME=hafw-web SERVICE_TAGS=blue,green SERVICE_CHECK_HTTP=/health SERVICE_CHECK_INTERVAL=1s` + "\n",
	} {
		dockerfile := "FROM scratch\nCOPY server /server\n" + health + `CMD ["/server"]` + "\n"
		d.build(t, tag, map[string][]byte{"Dockerfile": []byte(dockerfile), "server": bin})
	}
}

// build builds an image tagged tag in d from a context of files (a
// Dockerfile among them), with the classic builder.
func (d *testDaemon) build(t testing.TB, tag string, files map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body))})
		tw.Write(body)
	}
	tw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := d.Client(t).ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{tag}, Remove: true, Version: build.BuilderV1})
	if err != nil {
		t.Fatalf("building %s: %v", tag, err)
	}
	err = streamError(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("building %s: %v", tag, err)
	}
}

func streamError(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != nil {
			return errors.New(m.Error.Message)
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// envFile writes an env_file with the rules the agent enforces (root,
// mode 0600).
func envFile(t testing.TB, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "env")
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serviceEnv is an env_file that makes the server listen on a free
// loopback port, and that port.
func serviceEnv(t testing.TB, extra ...string) (string, int) {
	t.Helper()
	port := freePort(t)
	return envFile(t, append([]string{"ADDR=127.0.0.1:" + strconv.Itoa(port)}, extra...)...), port
}
