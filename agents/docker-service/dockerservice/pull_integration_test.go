//go:build integration

package dockerservice

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// testRegistry is a Docker registry of the test's own (Debian's
// docker-registry, the CNCF distribution server) on a free loopback port,
// with its storage in a temporary folder. dockerd talks plain HTTP to
// registries on 127.0.0.0/8 without being told.
type testRegistry struct {
	Addr string // 127.0.0.1:PORT
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRegistry starts a registry for this test alone and stops it when
// the test ends; it skips, saying why, without the docker-registry binary.
func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry not installed (apt-get install docker-registry)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "config.yml")
	// Port 0: the registry picks a free port and says which in its log.
	text := fmt.Sprintf("version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"+
		"storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"+
		"http:\n  addr: 127.0.0.1:0\n  secret: hafw-test\n", filepath.Join(dir, "data"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &testRegistry{log: filepath.Join(dir, "registry.log"), done: make(chan struct{})}
	logf, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "serve", conf)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); logf.Close(); close(r.done) }()
	t.Cleanup(func() {
		r.cmd.Process.Signal(syscall.SIGCONT)
		r.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(r.log)
			t.Logf("registry log (last 3000 bytes):\n%s", b[max(0, len(b)-3000):])
		}
	})
	listening := regexp.MustCompile(`listening on (127\.0\.0\.1:[0-9]+)`)
	deadline := time.Now().Add(30 * time.Second)
	for r.Addr == "" {
		b, _ := os.ReadFile(r.log)
		if m := listening.FindSubmatch(b); m != nil {
			r.Addr = string(m[1])
			break
		}
		select {
		case <-r.done:
			t.Fatalf("docker-registry exited:\n%s", b)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not say where it listens:\n%s", b)
		}
	}
	c := http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get("http://" + r.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry at %s does not answer /v2/: %v", r.Addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends the registry (SIGKILL after 10 s).
func (r *testRegistry) Stop() {
	select {
	case <-r.done:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
}

// pulls counts the requests for repo:tag's manifest the registry
// answered: an engine asks for it once per pull (by HEAD or GET), then
// fetches what it lacks by digest. A push may ask too: count around the
// agent's actions only.
func (r *testRegistry) pulls(t *testing.T, repo, tag string) int {
	t.Helper()
	f, err := os.Open(r.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// The access log, one line per request, Apache's combined format.
		l := sc.Text()
		if (strings.Contains(l, `"GET /v2/`) || strings.Contains(l, `"HEAD /v2/`)) && strings.Contains(l, " /v2/"+repo+"/manifests/"+tag+" HTTP/") {
			n++
		}
	}
	return n
}

// push tags local as ref in d, pushes it to the registry and removes the
// tag again, so that ref is in the registry and not on the node.
func push(t *testing.T, d *testDaemon, local, ref string) {
	t.Helper()
	cli := d.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: local, Target: ref}); err != nil {
		t.Fatal(err)
	}
	// dockerd 20.10 wants credentials, even empty ones ({}), for a push.
	resp, err := cli.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: "e30="})
	if err == nil {
		err = resp.Wait(ctx)
		resp.Close()
	}
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	untag(t, d, ref)
}

// untag removes ref from d (the image stays under its other tags).
func untag(t *testing.T, d *testDaemon, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := d.Client(t).ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil && !isNotFound(err) {
		t.Fatalf("removing %s: %v", ref, err)
	}
}

// imageID is ref's image id in d, "" when d does not have it.
func imageID(t *testing.T, d *testDaemon, ref string) string {
	t.Helper()
	img, err := d.Client(t).ImageInspect(context.Background(), ref)
	if isNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return img.ID
}

// TestPullPolicy runs the pull policies against a registry of the test's
// own, counting the pulls the registry serves: never pulls nothing even
// when the registry has the image, missing pulls once, always pulls at
// every start (and takes a new image under the same tag, replacing the
// container), and a pull runs within the start's timeout.
func TestPullPolicy(t *testing.T) { forEachEngine(t, testPullPolicy) }

func testPullPolicy(t *testing.T, kind string) {
	reg := startRegistry(t)
	d := newEngine(t, kind, false)
	d.trustRegistry(t, reg.Addr)
	d.buildImages(t)
	const repo = "hafw/web"
	ref := reg.Addr + "/" + repo + ":1"
	push(t, d, imagePlain, ref)
	v1 := imageID(t, d, imagePlain)
	// A second image under the same tag later on: the same server, one
	// label more.
	d.build(t, "hafw-test-server:v2", map[string][]byte{"Dockerfile": []byte("FROM " + imagePlain + "\nLABEL org.example.version=2\n")})
	v2 := imageID(t, d, "hafw-test-server:v2")

	s := newService(t, d, ref, nil)
	// start runs a start with pull and checks its code and how many
	// pulls the registry served meanwhile.
	start := func(pull string, extra map[string]string, want ocf.Code, pulls int) ocftest.Result {
		t.Helper()
		before := reg.pulls(t, repo, "1")
		got := s.must(t, "start", merge(map[string]string{"OCF_RESKEY_pull": pull}, extra), want)
		if n := reg.pulls(t, repo, "1") - before; n != pulls {
			t.Errorf("start with pull=%s: the registry served %d pulls, want %d", pull, n, pulls)
		}
		return got
	}

	got := start(pullNever, nil, ocf.NotInstalled, 0)
	if want := "image " + ref + " is not on this node and pull=never; load it or set pull=missing"; got.Reason != want {
		t.Errorf("start reason %q, want %q", got.Reason, want)
	}
	s.must(t, "stop", nil, ocf.Success)
	if id := imageID(t, d, ref); id != "" {
		t.Fatalf("pull=never put %s on the node", ref)
	}

	start(pullMissing, nil, ocf.Success, 1)
	first := s.inspect(t)
	if first.Image != v1 {
		t.Errorf("container runs image %s, want the pushed %s", first.Image, v1)
	}
	start(pullMissing, nil, ocf.Success, 0)

	// A new image under the same tag: missing keeps the one it has,
	// always takes the new one and replaces the container.
	push(t, d, "hafw-test-server:v2", ref)
	// push took the tag away: the node has the old image under it again.
	if _, err := d.Client(t).ImageTag(context.Background(), client.ImageTagOptions{Source: imagePlain, Target: ref}); err != nil {
		t.Fatal(err)
	}
	start(pullMissing, nil, ocf.Success, 0)
	if again := s.inspect(t); again.ID != first.ID {
		t.Errorf("pull=missing replaced the container (%s -> %s)", shortID(first.ID), shortID(again.ID))
	}
	start(pullAlways, nil, ocf.Success, 1)
	second := s.inspect(t)
	if second.Image != v2 || second.ID == first.ID {
		t.Errorf("after pull=always container %s runs image %s, want a new container of %s", shortID(second.ID), second.Image, v2)
	}
	start(pullAlways, nil, ocf.Success, 1)
	if again := s.inspect(t); again.ID != second.ID {
		t.Errorf("pull=always of an unchanged image replaced the container (%s -> %s)", shortID(second.ID), shortID(again.ID))
	}
	s.must(t, "monitor", recurring, ocf.Success)

	t.Run("a hung registry", func(t *testing.T) {
		if err := reg.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer reg.cmd.Process.Signal(syscall.SIGCONT)
		timeout := map[string]string{"OCF_RESKEY_CRM_meta_timeout": "8000"}
		// always, with a copy on the node: the pull gives up in time for
		// that copy to run.
		begin := time.Now()
		s.must(t, "start", merge(with(pullAlways), timeout), ocf.Success)
		took := time.Since(begin)
		if again := s.inspect(t); again.ID != second.ID || !again.State.Running {
			t.Errorf("with the registry frozen, pull=always replaced or stopped the container (%s -> %s)", shortID(second.ID), shortID(again.ID))
		}
		t.Logf("timing: start with pull=always against a frozen registry, with a local copy: done in %s (timeout 8 s)", took.Round(10*time.Millisecond))
		s.must(t, "stop", nil, ocf.Success)

		// missing, without a copy: a failure that says so, within the
		// timeout (past it, Pacemaker would have killed the agent).
		untag(t, d, ref)
		begin = time.Now()
		got := s.must(t, "start", merge(with(pullMissing), timeout), ocf.GenericFailure)
		took = time.Since(begin)
		if want := "pulling image " + ref + ": not done before the start timeout"; got.Reason != want {
			t.Errorf("start reason %q, want %q", got.Reason, want)
		}
		if took > 8*time.Second {
			t.Errorf("start took %s, beyond its 8 s timeout", took.Round(10*time.Millisecond))
		}
		t.Logf("timing: start with pull=missing against a frozen registry, no local copy: failed in %s (timeout 8 s)", took.Round(10*time.Millisecond))
		s.must(t, "stop", nil, ocf.Success)
	})

	t.Run("registry gone", func(t *testing.T) {
		reg.Stop()
		// missing, without a copy: a failure naming the pull.
		untag(t, d, ref)
		got := s.must(t, "start", with(pullMissing), ocf.GenericFailure)
		if !strings.HasPrefix(got.Reason, "pulling image "+ref+": ") || len(got.Reason) > 128 {
			t.Errorf("start reason %q, want the failed pull in at most 128 bytes", got.Reason)
		}
		s.must(t, "stop", nil, ocf.Success)
		// always: the copy on the node serves.
		if _, err := d.Client(t).ImageTag(context.Background(), client.ImageTagOptions{Source: "hafw-test-server:v2", Target: ref}); err != nil {
			t.Fatal(err)
		}
		s.must(t, "start", with(pullAlways), ocf.Success)
		if again := s.inspect(t); again.Image != v2 {
			t.Errorf("with the registry gone, pull=always runs image %s, want the local %s", again.Image, v2)
		}
		s.must(t, "stop", nil, ocf.Success)
	})
}

func with(pull string) map[string]string { return map[string]string{"OCF_RESKEY_pull": pull} }

func merge(maps ...map[string]string) map[string]string {
	m := map[string]string{}
	for _, x := range maps {
		for k, v := range x {
			m[k] = v
		}
	}
	return m
}
