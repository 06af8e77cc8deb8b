//go:build integration

package dockerservice

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// These tests run the agent in-process against a dockerd each test
// starts for itself (see testDaemon), with images built from the static
// test server in testdata/server; the containers use the host's network
// and listen on free loopback ports.

var (
	recurring = map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"}
	probe     = map[string]string{"OCF_RESKEY_CRM_meta_interval": ""}
)

// service is one resource of the agent under test.
type service struct {
	*ocftest.Runner
	d       *testDaemon
	name    string
	port    int
	envFile string
	record  string // where the agent records the container's process
}

func newService(t *testing.T, d *testDaemon, image string, params map[string]string, envLines ...string) *service {
	t.Helper()
	return newNamedService(t, d, containerName("hafw-"+strings.ToLower(t.Name())), image, params, envLines...)
}

// newNamedService is newService for a resource (and container) name of
// the test's choosing, for tests that run several.
func newNamedService(t *testing.T, d *testDaemon, name, image string, params map[string]string, envLines ...string) *service {
	t.Helper()
	return newServiceIn(t, d, t.TempDir(), name, image, params, envLines...)
}

// newServiceIn is newNamedService with the state directory (HA_RSCTMP)
// given, for resources that share one, as on one node.
func newServiceIn(t *testing.T, d *testDaemon, state, name, image string, params map[string]string, envLines ...string) *service {
	t.Helper()
	env, port := serviceEnv(t, envLines...)
	p := map[string]string{"image": image, "docker_host": d.Host, "network": "host", "env_file": env, "pull": "never",
		"check_tcp": "127.0.0.1:" + strconv.Itoa(port)}
	for k, v := range params {
		p[k] = v
	}
	r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "docker-service", Params: p,
		Env: map[string]string{"OCF_RESOURCE_INSTANCE": name, "HA_RSCTMP": state}})
	return &service{Runner: r, d: d, name: name, port: port, envFile: env,
		record: filepath.Join(state, "docker-service-"+name+".json")}
}

func (s *service) must(t *testing.T, action string, extra map[string]string, want ocf.Code) ocftest.Result {
	t.Helper()
	got := s.Run(action, extra)
	if got.Code != want {
		t.Fatalf("%s = %v (reason %q), want %v\n%s", action, got.Code, got.Reason, want, got.Stderr)
	}
	return got
}

func (s *service) inspect(t *testing.T) container.InspectResponse {
	t.Helper()
	res, err := s.d.Client(t).ContainerInspect(context.Background(), s.name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Container
}

func (s *service) get(path string) (int, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(s.port) + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestConformance(t *testing.T) {
	forEachEngine(t, func(t *testing.T, kind string) {
		d := sharedEngine(t, kind)
		env, port := serviceEnv(t)
		ocftest.Conformance(t, New(), ocftest.Config{Name: "docker-service", Params: map[string]string{
			"image": imagePlain, "docker_host": d.Host, "network": "host", "env_file": env, "pull": "never",
			"name": "hafw-conformance", "check_tcp": "127.0.0.1:" + strconv.Itoa(port),
		}})
	})
}

func TestHealth(t *testing.T) { forEachEngine(t, testHealth) }

func testHealth(t *testing.T, kind string) {
	d := sharedEngine(t, kind)
	healthchecks := func(t *testing.T) {
		if kind == enginePodman {
			t.Skip("Podman runs HEALTHCHECKs from systemd timers: without systemd as PID 1 (as here) they never run")
		}
	}

	t.Run("start waits until healthy, monitor fails when unhealthy", func(t *testing.T) {
		healthchecks(t)
		s := newService(t, d, imageHealth, nil)
		s.must(t, "start", nil, ocf.Success)
		if h := s.inspect(t).State.Health; h == nil || h.Status != container.Healthy {
			t.Fatalf("start returned with health %+v", h)
		}
		s.must(t, "monitor", recurring, ocf.Success)
		if _, err := s.get("/sick"); err != nil {
			t.Fatal(err)
		}
		// Docker marks the container unhealthy after its HEALTHCHECK's
		// retries; on a loaded machine its timer runs late. The bound
		// only ends a wait that would never succeed.
		deadline := time.Now().Add(60 * time.Second)
		for {
			got := s.Run("monitor", recurring)
			if got.Code == ocf.GenericFailure && strings.Contains(got.Reason, "is unhealthy: health: status 500") {
				break
			}
			if got.Code != ocf.Success || time.Now().After(deadline) {
				t.Fatalf("monitor = %v %q, want failure for unhealthy", got.Code, got.Reason)
			}
			time.Sleep(300 * time.Millisecond)
		}
		s.must(t, "stop", nil, ocf.Success)
		s.must(t, "monitor", recurring, ocf.NotRunning)
	})

	t.Run("start fails fast when unhealthy", func(t *testing.T) {
		healthchecks(t)
		s := newService(t, d, imageHealth, nil, "SICK=1")
		begin := time.Now()
		got := s.Run("start", map[string]string{"OCF_RESKEY_CRM_meta_timeout": "60000"})
		if got.Code != ocf.GenericFailure || !strings.Contains(got.Reason, "is unhealthy: health: status 500") {
			t.Fatalf("start = %v %q, want unhealthy", got.Code, got.Reason)
		}
		// Seen as it happened, not at the end of the start's timeout
		// (where the reason would be a timeout's).
		if took := time.Since(begin); took >= 60*time.Second {
			t.Errorf("start took %v, its whole timeout, to see an unhealthy container", took)
		}
		s.must(t, "stop", nil, ocf.Success)
	})

	t.Run("start fails fast with the last output line when the container exits", func(t *testing.T) {
		s := newService(t, d, imageHealth, nil, "EXIT_MSG=cannot open database: connection refused")
		begin := time.Now()
		got := s.Run("start", map[string]string{"OCF_RESKEY_CRM_meta_timeout": "60000"})
		want := "exited (3): cannot open database: connection refused"
		if got.Code != ocf.GenericFailure || !strings.Contains(got.Reason, want) || len(got.Reason) > 128 {
			t.Fatalf("start = %v %q, want %q in at most 128 bytes", got.Code, got.Reason, want)
		}
		if took := time.Since(begin); took >= 60*time.Second {
			t.Errorf("start took %v, its whole timeout, to see an exited container", took)
		}
		got = s.must(t, "monitor", recurring, ocf.NotRunning)
		if !strings.Contains(got.Reason, want) {
			t.Errorf("monitor reason %q, want %q", got.Reason, want)
		}
		s.must(t, "stop", nil, ocf.Success)
	})

	t.Run("readiness by check_http without a HEALTHCHECK", func(t *testing.T) {
		s := newService(t, d, imagePlain, nil)
		s.Runner = ocftest.NewRunner(t, New(), ocftest.Config{Name: "docker-service", Params: map[string]string{
			"image": imagePlain, "docker_host": d.Host, "network": "host", "pull": "never",
			"env_file":   envFile(t, "ADDR=127.0.0.1:"+strconv.Itoa(s.port)),
			"check_http": "http://127.0.0.1:" + strconv.Itoa(s.port) + "/health",
		}, Env: map[string]string{"OCF_RESOURCE_INSTANCE": s.name}})
		s.must(t, "start", nil, ocf.Success)
		if code, err := s.get("/health"); err != nil || code != 200 {
			t.Fatalf("service not ready after start: %v %v", code, err)
		}
		deep := map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000", "OCF_CHECK_LEVEL": "10"}
		s.must(t, "monitor", deep, ocf.Success)
		s.get("/sick")
		if got := s.must(t, "monitor", deep, ocf.GenericFailure); !strings.Contains(got.Reason, "check_http") {
			t.Errorf("deep monitor reason %q, want check_http", got.Reason)
		}
		s.must(t, "monitor", recurring, ocf.Success) // depth 0 only asks dockerd
		s.must(t, "stop", nil, ocf.Success)
	})
}

func TestIdentity(t *testing.T) { forEachEngine(t, testIdentity) }

func testIdentity(t *testing.T, kind string) {
	d := sharedEngine(t, kind)
	cli := d.Client(t)

	t.Run("start reuses a matching container and replaces a changed one", func(t *testing.T) {
		s := newService(t, d, imagePlain, nil)
		s.must(t, "start", nil, ocf.Success)
		first := s.inspect(t)
		if first.HostConfig.RestartPolicy.Name != container.RestartPolicyDisabled {
			t.Errorf("restart policy %q, want no", first.HostConfig.RestartPolicy.Name)
		}
		if l := first.Config.Labels; l[labelResource] != s.name || len(l[labelConfig]) != 64 {
			t.Errorf("labels %v", l)
		}
		s.must(t, "start", nil, ocf.Success)
		if again := s.inspect(t); again.ID != first.ID {
			t.Errorf("second start replaced the container (%s -> %s)", shortID(first.ID), shortID(again.ID))
		}
		s.must(t, "start", map[string]string{"OCF_RESKEY_labels": "tier=web"}, ocf.Success)
		changed := s.inspect(t)
		if changed.ID == first.ID || changed.Config.Labels["tier"] != "web" {
			t.Errorf("start with new labels kept the old container %s (labels %v)", shortID(changed.ID), changed.Config.Labels)
		}

		// A new secret in the env file replaces the container too, and
		// never shows in the agent's output.
		const secret = "API_TOKEN=hunter2-6e1f"
		if err := os.WriteFile(s.envFile, []byte("ADDR=127.0.0.1:"+strconv.Itoa(s.port)+"\n"+secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		out.WriteString(s.must(t, "start", map[string]string{"OCF_RESKEY_labels": "tier=web"}, ocf.Success).Stderr)
		withSecret := s.inspect(t)
		if withSecret.ID == changed.ID || !slices.Contains(withSecret.Config.Env, secret) {
			t.Errorf("start with a new env file kept container %s (env has the secret: %v)", shortID(withSecret.ID), slices.Contains(withSecret.Config.Env, secret))
		}
		if withSecret.Path == "" || slices.Contains(append(withSecret.Args, withSecret.Path), secret) {
			t.Errorf("secret in the container's argv %q %q", withSecret.Path, withSecret.Args)
		}
		out.WriteString(s.must(t, "monitor", recurring, ocf.Success).Stderr)
		out.WriteString(s.must(t, "stop", nil, ocf.Success).Stderr)
		if strings.Contains(out.String(), "hunter2") {
			t.Errorf("the secret shows in the agent's output:\n%s", out.String())
		}
		if _, err := cli.ContainerInspect(context.Background(), s.name, client.ContainerInspectOptions{}); !isNotFound(err) {
			t.Errorf("container still exists after stop: %v", err)
		}
	})

	t.Run("pull=never with the image absent is this node's problem", func(t *testing.T) {
		s := newService(t, d, "hafw-test-absent:1", nil)
		got := s.must(t, "start", nil, ocf.NotInstalled)
		if !strings.Contains(got.Reason, "image hafw-test-absent:1 is not on this node and pull=never") {
			t.Errorf("start reason %q", got.Reason)
		}
		s.must(t, "monitor", probe, ocf.NotRunning)
		s.must(t, "stop", nil, ocf.Success)
	})

	t.Run("a command that cannot run fails the start; stop cleans up", func(t *testing.T) {
		s := newService(t, d, imagePlain, map[string]string{"command": "/no/such/server"})
		got := s.must(t, "start", nil, ocf.GenericFailure)
		if !strings.Contains(got.Reason, `container did not start: exec: "/no/such/server": stat /no/such/server: no such file`) {
			t.Errorf("start reason %q, want the runtime's words", got.Reason)
		}
		if got := s.must(t, "monitor", recurring, ocf.NotRunning); !strings.Contains(got.Reason, "container created but never started") {
			t.Errorf("monitor reason %q", got.Reason)
		}
		s.must(t, "stop", nil, ocf.Success)
		if _, err := d.Client(t).ContainerInspect(context.Background(), s.name, client.ContainerInspectOptions{}); !isNotFound(err) {
			t.Errorf("stop left the container: %v", err)
		}
	})

	t.Run("a foreign container of the same name is never touched", func(t *testing.T) {
		s := newService(t, d, imagePlain, nil)
		ctx := context.Background()
		foreign, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: s.name,
			Config:     &container.Config{Image: imagePlain, Env: []string{"ADDR=127.0.0.1:" + strconv.Itoa(s.port)}},
			HostConfig: &container.HostConfig{NetworkMode: "host"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.ContainerStart(ctx, foreign.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		s.must(t, "monitor", probe, ocf.NotRunning)
		got := s.must(t, "start", nil, ocf.InvalidArgs)
		if !strings.Contains(got.Reason, "container "+s.name+" exists and is not this resource's") {
			t.Errorf("start reason %q", got.Reason)
		}
		s.must(t, "stop", nil, ocf.Success)
		if ins := s.inspect(t); ins.ID != foreign.ID || !ins.State.Running {
			t.Errorf("the foreign container was touched: %s running=%v", shortID(ins.ID), ins.State.Running)
		}
	})

	t.Run("a name that reads as another container's ID prefix is no container's", func(t *testing.T) {
		ctx := context.Background()
		other := newService(t, d, imagePlain, nil)
		foreign, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: other.name,
			Config:     &container.Config{Image: imagePlain, Env: []string{"ADDR=127.0.0.1:" + strconv.Itoa(other.port)}},
			HostConfig: &container.HostConfig{NetworkMode: "host"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = cli.ContainerRemove(ctx, foreign.ID, client.ContainerRemoveOptions{Force: true}) })
		// The Engine would take this name as the foreign container's ID.
		prefix := foreign.ID[:10]
		s := newService(t, d, imagePlain, map[string]string{"name": prefix})
		s.must(t, "monitor", probe, ocf.NotRunning)
		s.must(t, "stop", nil, ocf.Success)
		s.must(t, "start", nil, ocf.Success)
		ours, err := cli.ContainerInspect(ctx, "/"+prefix, client.ContainerInspectOptions{})
		if err != nil || ours.Container.ID == foreign.ID || ours.Container.Name != "/"+prefix {
			t.Fatalf("start made no container named %s: %v", prefix, err)
		}
		s.must(t, "monitor", recurring, ocf.Success)
		s.must(t, "stop", nil, ocf.Success)
		if res, err := cli.ContainerInspect(ctx, foreign.ID, client.ContainerInspectOptions{}); err != nil || res.Container.Name != "/"+other.name {
			t.Errorf("the foreign container was touched: %v", err)
		}
	})

	t.Run("kill -9 of the container's process is seen and recovered", func(t *testing.T) {
		s := newService(t, d, imagePlain, nil)
		s.must(t, "start", nil, ocf.Success)
		pid := s.inspect(t).State.Pid
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := s.Run("monitor", recurring)
			if got.Code == ocf.NotRunning {
				if !strings.Contains(got.Reason, "exited (137)") {
					t.Errorf("monitor reason %q, want exit 137", got.Reason)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("monitor = %v %q after kill -9", got.Code, got.Reason)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Pacemaker's recovery: stop, then start.
		s.must(t, "stop", nil, ocf.Success)
		s.must(t, "start", nil, ocf.Success)
		if code, err := s.get("/"); err != nil || code != 200 {
			t.Errorf("service after recovery: %v %v", code, err)
		}
		s.must(t, "stop", nil, ocf.Success)
	})
}

// TestDaemonDown stops, freezes and restarts the test's own dockerd under
// a running container. The cases:
//   - dockerd stopped without live-restore: it stopped the containers, so
//     the recorded process is gone and the monitor says "not running";
//   - dockerd stopped with live-restore: the container runs on; the
//     monitor says so (degraded) and stop ends its process with signals;
//   - dockerd hung (SIGSTOP): calls time out within the action's deadline
//     and the same fallback answers;
//   - no record of a container (never started here, or the state
//     directory emptied): the monitor cannot know and fails (1, never 7);
//     stop succeeds, as nothing it could act on runs.
func TestDaemonDown(t *testing.T) {
	t.Run("stopped without live-restore", func(t *testing.T) {
		d := newDaemon(t, false)
		d.buildImages(t)
		s := newService(t, d, imagePlain, nil)
		s.must(t, "start", nil, ocf.Success)
		unknown := newService(t, d, imagePlain, nil)
		unknown.Runner = ocftest.NewRunner(t, New(), ocftest.Config{Name: "docker-service",
			Params: map[string]string{"image": imagePlain, "docker_host": d.Host},
			Env:    map[string]string{"OCF_RESOURCE_INSTANCE": "hafw-never-started"}})
		d.Stop(t)

		got := s.must(t, "monitor", recurring, ocf.NotRunning)
		if !strings.Contains(got.Reason, "is not reachable; container process") || !strings.Contains(got.Reason, "is gone") {
			t.Errorf("monitor reason %q", got.Reason)
		}
		s.must(t, "monitor", probe, ocf.NotRunning)
		if got := unknown.must(t, "monitor", recurring, ocf.GenericFailure); !strings.Contains(got.Reason, "cannot tell whether") {
			t.Errorf("monitor reason without a record %q", got.Reason)
		}
		unknown.must(t, "monitor", probe, ocf.GenericFailure)
		unknown.must(t, "stop", nil, ocf.Success)

		// A socket file nobody listens on: connection refused.
		l, err := net.Listen("unix", d.sock)
		if err != nil {
			t.Fatal(err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close()
		unknown.must(t, "monitor", recurring, ocf.GenericFailure)
		s.must(t, "monitor", recurring, ocf.NotRunning)
		s.must(t, "stop", nil, ocf.Success)
		os.Remove(d.sock)

		d.start(t)
		s.must(t, "monitor", recurring, ocf.NotRunning)
		s.must(t, "stop", nil, ocf.Success)
		if _, err := d.Client(t).ContainerInspect(context.Background(), s.name, client.ContainerInspectOptions{}); !isNotFound(err) {
			t.Errorf("stop with dockerd back left the container: %v", err)
		}
		s.must(t, "start", nil, ocf.Success)

		t.Run("hung", func(t *testing.T) {
			proc, err := process.Identify(s.inspect(t).State.Pid)
			if err != nil {
				t.Fatal(err)
			}
			d.Freeze(t)
			defer d.Thaw()
			begin := time.Now()
			got := s.must(t, "monitor", map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000", "OCF_RESKEY_CRM_meta_timeout": "4000"}, ocf.Degraded)
			if !strings.Contains(got.Reason, "did not answer in time; container process") {
				t.Errorf("monitor reason %q", got.Reason)
			}
			if took := time.Since(begin); took > 4*time.Second {
				t.Errorf("monitor took %v, beyond its timeout", took)
			}
			s.must(t, "stop", map[string]string{"OCF_RESKEY_CRM_meta_timeout": "10000"}, ocf.Success)
			if took := time.Since(begin); took > 14*time.Second {
				t.Errorf("monitor and stop took %v, beyond their timeouts", took)
			}
			if alive(proc) {
				t.Errorf("container process %d survived the stop", proc.PID)
			}
			d.Thaw()
			// dockerd learns of the exit of the process the stop killed
			// while it was frozen only after the thaw, from its shim:
			// until then it still calls the container running.
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				if got := s.Run("monitor", recurring); got.Code == ocf.NotRunning || time.Now().After(deadline) {
					break
				}
			}
			s.must(t, "monitor", recurring, ocf.NotRunning)
			s.must(t, "stop", nil, ocf.Success)
		})
	})

	t.Run("podman API service stopped", func(t *testing.T) {
		// Podman's containers never depend on its API service (conmon
		// watches each one): they run on, like dockerd's with live-restore.
		d := newEngine(t, enginePodman, false)
		d.buildImages(t)
		s := newService(t, d, imagePlain, nil)
		s.must(t, "start", nil, ocf.Success)
		proc, err := process.Identify(s.inspect(t).State.Pid)
		if err != nil {
			t.Fatal(err)
		}
		d.Stop(t)
		if got := s.must(t, "monitor", recurring, ocf.Degraded); !strings.Contains(got.Reason, "still runs") {
			t.Errorf("monitor reason %q", got.Reason)
		}
		s.must(t, "stop", nil, ocf.Success)
		if alive(proc) {
			t.Errorf("container process %d survived the stop", proc.PID)
		}
		s.must(t, "monitor", recurring, ocf.NotRunning)
		d.start(t)
		s.must(t, "monitor", recurring, ocf.NotRunning)
		s.must(t, "stop", nil, ocf.Success)
	})

	t.Run("stopped with live-restore", func(t *testing.T) {
		d := newDaemon(t, true)
		d.buildImages(t)
		s := newService(t, d, imagePlain, nil)
		s.must(t, "start", nil, ocf.Success)
		proc, err := process.Identify(s.inspect(t).State.Pid)
		if err != nil {
			t.Fatal(err)
		}
		// A record lost (or never made by an older version) is made
		// again by the next monitor.
		if err := os.Remove(s.record); err != nil {
			t.Fatal(err)
		}
		s.must(t, "monitor", recurring, ocf.Success)
		d.Stop(t)

		got := s.must(t, "monitor", recurring, ocf.Degraded)
		if !strings.Contains(got.Reason, "still runs") {
			t.Errorf("monitor reason %q", got.Reason)
		}
		if code, err := s.get("/"); err != nil || code != 200 {
			t.Errorf("service with dockerd stopped (live-restore): %v %v", code, err)
		}
		s.must(t, "stop", nil, ocf.Success)
		if alive(proc) {
			t.Errorf("container process %d survived the stop", proc.PID)
		}
		s.must(t, "monitor", recurring, ocf.NotRunning)

		d.start(t)
		s.must(t, "monitor", recurring, ocf.NotRunning)
		s.must(t, "stop", nil, ocf.Success)
	})
}
