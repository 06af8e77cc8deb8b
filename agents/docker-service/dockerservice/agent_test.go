package dockerservice

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	wide := filepath.Join(dir, "wide.env")
	os.WriteFile(wide, []byte("TOKEN=s3cret-value\n"), 0o644)
	broken := filepath.Join(dir, "broken.env")
	os.WriteFile(broken, []byte("# ok\nTOKEN s3cret-value\n"), 0o600)
	sock := filepath.Join(dir, "docker.sock")
	os.WriteFile(sock, nil, 0o600) // present: validation passes; nothing answers

	tests := []struct {
		name   string
		params map[string]string
		action string
		want   ocf.Code
		reason string
	}{
		{"missing image", map[string]string{}, "validate-all", ocf.Misconfigured, "parameter image is required"},
		{"bad name", map[string]string{"name": "-web"}, "validate-all", ocf.Misconfigured, `name="-web" is invalid`},
		{"bad publish", map[string]string{"publish": "8080:80 99999:80"}, "validate-all", ocf.Misconfigured, `publish "99999:80": port "99999" is not a number from 1 to 65535`},
		{"bad publish ip", map[string]string{"publish": "localhost:80:80"}, "start", ocf.Misconfigured, `publish "localhost:80:80": "localhost" is not an IPv4 address`},
		{"bad publish on monitor", map[string]string{"publish": "80/icmp"}, "monitor", ocf.Misconfigured, `publish "80/icmp": protocol "icmp"`},
		{"relative mount target", map[string]string{"mounts": "/srv:data"}, "validate-all", ocf.Misconfigured, `mounts "/srv:data": target "data" is not an absolute path`},
		{"bad mount mode", map[string]string{"mounts": "/srv:/data:rx"}, "validate-all", ocf.Misconfigured, `mode "rx" is not ro or rw`},
		{"bad memory", map[string]string{"memory": "lots"}, "validate-all", ocf.Misconfigured, `memory="lots" is invalid: not a size`},
		{"tiny memory", map[string]string{"memory": "1m"}, "validate-all", ocf.Misconfigured, "must be at least 6m"},
		{"bad cpus", map[string]string{"cpus": "0"}, "validate-all", ocf.Misconfigured, "cpus=\"0\" is invalid: not a number of CPUs"},
		{"our own label", map[string]string{"labels": "org.ha-framework.resource=x"}, "validate-all", ocf.Misconfigured, `labels "org.ha-framework.resource=x": label org.ha-framework.resource is the agent's own`},
		{"bad pull", map[string]string{"pull": "sometimes"}, "validate-all", ocf.Misconfigured, "not one of never, missing, always"},
		{"tcp docker_host", map[string]string{"docker_host": "tcp://127.0.0.1:2375"}, "validate-all", ocf.Misconfigured, "must be unix:///ABSOLUTE/PATH"},
		{"bad check_tcp", map[string]string{"check_tcp": "8080"}, "validate-all", ocf.Misconfigured, "check_tcp=\"8080\" is invalid: must be HOST:PORT"},
		{"https check_http", map[string]string{"check_http": "https://x/"}, "validate-all", ocf.Misconfigured, "must be an http:// URL"},
		{"relative env_file", map[string]string{"env_file": "app.env"}, "validate-all", ocf.Misconfigured, "must be an absolute path"},
		{"env_file readable by others", map[string]string{"env_file": wide}, "start", ocf.InvalidArgs, "chmod 600"},
		{"env_file without =", map[string]string{"env_file": broken}, "start", ocf.InvalidArgs, "line 2 has no '='"},
		{"env_file missing", map[string]string{"env_file": dir + "/none"}, "start", ocf.InvalidArgs, "does not exist on this node"},
		{"daemon not answering", map[string]string{}, "start", ocf.GenericFailure, "dockerd at " + sock + " is not reachable"},
		{"stop with bad parameters", map[string]string{"memory": "lots"}, "stop", ocf.Success, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := map[string]string{"image": "web:1", "docker_host": "unix://" + sock}
			for k, v := range tt.params {
				p[k] = v
			}
			if tt.name == "missing image" {
				delete(p, "image")
			}
			r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "docker-service", Params: p,
				Env: map[string]string{"OCF_RESKEY_CRM_meta_timeout": "2000"}})
			got := r.Run(tt.action, nil)
			if got.Code != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("%s = %v %q, want %v with %q", tt.action, got.Code, got.Reason, tt.want, tt.reason)
			}
			if len(got.Reason) > ocf.MaxReason {
				t.Errorf("reason is %d bytes, more than Pacemaker shows: %q", len(got.Reason), got.Reason)
			}
			if strings.Contains(got.Stderr, "s3cret-value") {
				t.Errorf("the env_file's secret leaked into the output:\n%s", got.Stderr)
			}
		})
	}
}

// TestNoEngine: a node without a container engine answers probes with
// "not running" and stops with success, so it never blocks recovery.
func TestNoEngine(t *testing.T) {
	r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "docker-service",
		Params: map[string]string{"image": "web:1", "docker_host": "unix:///nonexistent/docker.sock"},
		Env:    map[string]string{"OCF_TESTER_FAIL_HAVE_BINARY": "1"}})
	if got := r.Run("monitor", map[string]string{"OCF_RESKEY_CRM_meta_interval": "0"}); got.Code != ocf.NotRunning {
		t.Errorf("probe = %v %q, want not running", got.Code, got.Reason)
	}
	if got := r.Run("stop", nil); got.Code != ocf.Success {
		t.Errorf("stop = %v %q", got.Code, got.Reason)
	}
	if got := r.Run("start", nil); got.Code != ocf.NotInstalled || !strings.Contains(got.Reason, "install docker.io or podman") {
		t.Errorf("start = %v %q", got.Code, got.Reason)
	}
}

func TestIdentityOf(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		param    string
		resource string
		cname    string
	}{
		{"primitive", map[string]string{"OCF_RESOURCE_INSTANCE": "web"}, "", "web", "web"},
		{"explicit name", map[string]string{"OCF_RESOURCE_INSTANCE": "web"}, "shop-web", "web", "shop-web"},
		{"anonymous clone: one container per node whatever the instance number",
			map[string]string{"OCF_RESOURCE_INSTANCE": "web:3", "OCF_RESKEY_CRM_meta_clone_max": "3", "OCF_RESKEY_CRM_meta_clone": "3"}, "", "web", "web"},
		{"globally unique clone: one container per instance",
			map[string]string{"OCF_RESOURCE_INSTANCE": "web:3", "OCF_RESKEY_CRM_meta_clone_max": "4", "OCF_RESKEY_CRM_meta_clone": "3",
				"OCF_RESKEY_CRM_meta_globally_unique": "true"}, "", "web:3", "web-3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &ocf.Request[Config]{Config: &Config{Name: tt.param}, Env: ocf.MapEnv(tt.env)}
			got := identityOf(r)
			if got.Resource != tt.resource || got.Name != tt.cname {
				t.Errorf("identityOf = %+v, want resource %q name %q", got, tt.resource, tt.cname)
			}
		})
	}
}

func TestCreateOptions(t *testing.T) {
	c := &Config{Image: "shop/web:1.4", Command: []string{"/server", "-v"}, Publish: []string{"8080:80", "127.0.0.1:9090:90/udp", "[::1]:8443:443"},
		Mounts: []string{"/srv/data:/data:ro", "cache:/cache"}, Network: "backend", User: "101:101", Memory: "512m", CPUs: "1.5",
		Labels: []string{"tier=web"}}
	s, err := newSpec(c, []string{"A=1"}, "sha256:abc")
	if err != nil {
		t.Fatal(err)
	}
	o := s.createOptions(identity{Resource: "web", Name: "web"})
	if o.Name != "web" || o.Config.Image != "shop/web:1.4" || o.Config.User != "101:101" || !cmp.Equal(o.Config.Cmd, []string{"/server", "-v"}) {
		t.Errorf("config %+v", o.Config)
	}
	if o.HostConfig.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Errorf("restart policy %q, want no", o.HostConfig.RestartPolicy.Name)
	}
	if o.HostConfig.Memory != 512<<20 || o.HostConfig.NanoCPUs != 1_500_000_000 || o.HostConfig.NetworkMode != "backend" {
		t.Errorf("resources %+v network %q", o.HostConfig.Resources, o.HostConfig.NetworkMode)
	}
	wantLabels := map[string]string{"tier": "web", labelResource: "web", labelConfig: s.Hash(), labelAgent: "docker-service"}
	if diff := cmp.Diff(wantLabels, o.Config.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	ports := map[string]string{}
	for p, bs := range o.HostConfig.PortBindings {
		for _, b := range bs {
			ip := ""
			if b.HostIP.IsValid() {
				ip = b.HostIP.String()
			}
			ports[p.String()] = ip + "|" + b.HostPort
		}
	}
	if diff := cmp.Diff(map[string]string{"80/tcp": "|8080", "90/udp": "127.0.0.1|9090", "443/tcp": "::1|8443"}, ports); diff != "" {
		t.Errorf("port bindings (-want +got):\n%s", diff)
	}
	if _, ok := o.Config.ExposedPorts[network.MustParsePort("90/udp")]; !ok {
		t.Errorf("exposed ports %v", o.Config.ExposedPorts)
	}
	wantMounts := []mount.Mount{
		{Type: mount.TypeBind, Source: "/srv/data", Target: "/data", ReadOnly: true},
		{Type: mount.TypeVolume, Source: "cache", Target: "/cache"},
	}
	if diff := cmp.Diff(wantMounts, o.HostConfig.Mounts); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
}

// TestHashCoversEverything: every part of the configuration, secrets in
// the env file included, changes the hash, so start replaces the container.
func TestHashCoversEverything(t *testing.T) {
	base := func() (*Config, []string, string) {
		return &Config{Image: "web:1", Command: []string{"a"}, Publish: []string{"80"}, Mounts: []string{"/a:/b"},
			Network: "n", User: "u", Memory: "64m", CPUs: "1", Labels: []string{"k=v"}}, []string{"A=1"}, "sha256:1"
	}
	c, env, id := base()
	s0, _ := newSpec(c, env, id)
	changes := map[string]func(c *Config, env *[]string, id *string){
		"image":    func(c *Config, _ *[]string, _ *string) { c.Image = "web:2" },
		"image id": func(_ *Config, _ *[]string, id *string) { *id = "sha256:2" },
		"command":  func(c *Config, _ *[]string, _ *string) { c.Command = []string{"b"} },
		"env":      func(_ *Config, env *[]string, _ *string) { *env = []string{"A=2"} },
		"publish":  func(c *Config, _ *[]string, _ *string) { c.Publish = []string{"81"} },
		"mounts":   func(c *Config, _ *[]string, _ *string) { c.Mounts = []string{"/a:/b:ro"} },
		"network":  func(c *Config, _ *[]string, _ *string) { c.Network = "m" },
		"user":     func(c *Config, _ *[]string, _ *string) { c.User = "v" },
		"memory":   func(c *Config, _ *[]string, _ *string) { c.Memory = "65m" },
		"cpus":     func(c *Config, _ *[]string, _ *string) { c.CPUs = "2" },
		"labels":   func(c *Config, _ *[]string, _ *string) { c.Labels = []string{"k=w"} },
	}
	for name, change := range changes {
		c, env, id := base()
		change(c, &env, &id)
		s, err := newSpec(c, env, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Hash() == s0.Hash() {
			t.Errorf("a change of %s keeps the hash", name)
		}
	}
	// Label order is not a change.
	c, env, id = base()
	c.Labels = []string{"x=1", "k=v"}
	s1, _ := newSpec(c, env, id)
	c.Labels = []string{"k=v", "x=1"}
	s2, _ := newSpec(c, env, id)
	if s1.Hash() != s2.Hash() {
		t.Error("label order changes the hash")
	}
}

func TestEngineMessage(t *testing.T) {
	for in, want := range map[string]string{
		`Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/x": stat /x: no such file or directory: unknown`: `exec: "/x": stat /x: no such file or directory: unknown`,
		"Error response from daemon: No such image: web:1":  "No such image: web:1",
		"dial unix /run/docker.sock: connect: no such file": "dial unix /run/docker.sock: connect: no such file",
	} {
		if got := engineMessage(errors.New(in)); got != want {
			t.Errorf("engineMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStopGrace(t *testing.T) {
	for _, tt := range []struct {
		left time.Duration
		want int
	}{{60 * time.Second, 49}, {20 * time.Second, 14}, {4 * time.Second, 2}, {time.Second, 0}} {
		ctx, cancel := context.WithTimeout(context.Background(), tt.left)
		got := stopGrace(ctx)
		cancel()
		// The clock runs between WithTimeout and stopGrace: a second less is fine.
		if got != tt.want && got != tt.want-1 {
			t.Errorf("stopGrace with %v left = %d, want %d", tt.left, got, tt.want)
		}
	}
}
