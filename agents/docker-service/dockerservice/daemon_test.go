//go:build integration

package dockerservice

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// testDaemon is a dockerd of the test's own: its own data, exec root,
// pid file and socket, no bridge and no iptables rules, so that tests can
// stop, freeze and restart it without disturbing any other daemon on the
// machine.
type testDaemon struct {
	Host        string // unix:///run/hafw-test-docker-N.sock
	sock        string
	data, exec  string
	log         string
	liveRestore bool
	cmd         *exec.Cmd
	done        chan struct{}
}

var daemonSeq atomic.Int32

// newDaemon starts a dockerd and stops it (removing every container it
// holds) when the test ends. It skips, saying why, without dockerd or
// root.
func newDaemon(t *testing.T, liveRestore bool) *testDaemon {
	t.Helper()
	if _, err := exec.LookPath("dockerd"); err != nil {
		t.Skip("dockerd not installed (apt-get install docker.io)")
	}
	if os.Geteuid() != 0 {
		t.Skip("dockerd needs root")
	}
	n := fmt.Sprintf("%d-%d", os.Getpid(), daemonSeq.Add(1))
	base, err := os.MkdirTemp("", "hafwd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &testDaemon{
		sock: "/run/hafw-test-docker-" + n + ".sock",
		data: filepath.Join(base, "data"), exec: filepath.Join(base, "x"), log: filepath.Join(base, "dockerd.log"),
		liveRestore: liveRestore,
	}
	d.Host = "unix://" + d.sock
	t.Cleanup(func() {
		d.Thaw()
		if !d.running() {
			d.start(t)
		}
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
		d.Stop(t)
		if t.Failed() {
			if b, err := os.ReadFile(d.log); err == nil {
				t.Logf("dockerd log (last 3000 bytes):\n%s", b[max(0, len(b)-3000):])
			}
		}
		os.RemoveAll(base)
	})
	d.start(t)
	return d
}

func (d *testDaemon) start(t *testing.T) {
	t.Helper()
	args := []string{"--data-root", d.data, "--exec-root", d.exec, "--pidfile", d.exec + ".pid",
		"-H", d.Host, "--bridge=none", "--iptables=false", "--ip6tables=false"}
	if d.liveRestore {
		args = append(args, "--live-restore")
	}
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command("dockerd", args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
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
			t.Fatalf("dockerd did not come up: %v\n%s", err, b[max(0, len(b)-2000):])
		}
		time.Sleep(100 * time.Millisecond)
	}
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

// Stop ends dockerd with SIGTERM, as its service manager would, and
// waits for it (SIGKILL after 40 s).
func (d *testDaemon) Stop(t *testing.T) {
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
		t.Errorf("dockerd ignored SIGTERM for 40 s")
	}
}

// Freeze stops dockerd with SIGSTOP: its socket still accepts connections
// but nothing answers, as with a hung daemon.
func (d *testDaemon) Freeze() { d.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw undoes Freeze.
func (d *testDaemon) Thaw() {
	if d.running() {
		d.cmd.Process.Signal(syscall.SIGCONT)
	}
}

func (d *testDaemon) Client(t *testing.T) *client.Client {
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
func serverBinary(t *testing.T) string {
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
func (d *testDaemon) buildImages(t *testing.T) {
	t.Helper()
	bin, err := os.ReadFile(serverBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	cli := d.Client(t)
	for tag, health := range map[string]string{
		imageHealth:      `HEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD ["/server", "-check"]` + "\n",
		imagePlain:       "",
		imageRegistrator: `LABEL SERVICE_NAME=hafw-web SERVICE_TAGS=blue,green SERVICE_CHECK_HTTP=/health SERVICE_CHECK_INTERVAL=1s` + "\n",
	} {
		dockerfile := "FROM scratch\nCOPY server /server\n" + health + `CMD ["/server"]` + "\n"
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for name, body := range map[string][]byte{"Dockerfile": []byte(dockerfile), "server": bin} {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body))})
			tw.Write(body)
		}
		tw.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{tag}, Remove: true, Version: build.BuilderV1})
		if err != nil {
			cancel()
			t.Fatalf("building %s: %v", tag, err)
		}
		err = streamError(res.Body)
		res.Body.Close()
		cancel()
		if err != nil {
			t.Fatalf("building %s: %v", tag, err)
		}
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

func freePort(t *testing.T) int {
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
func envFile(t *testing.T, lines ...string) string {
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
func serviceEnv(t *testing.T, extra ...string) (string, int) {
	t.Helper()
	port := freePort(t)
	return envFile(t, append([]string{"ADDR=127.0.0.1:" + strconv.Itoa(port)}, extra...)...), port
}
