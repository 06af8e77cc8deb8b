//go:build integration

package dockerservice

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/moby/moby/client"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
	"github.com/ha-framework/ha-framework/testcluster/consultest"
)

// TestRegistration runs the container with register=true against a real
// Consul dev agent: the image's Registrator labels name the service, its
// tags and its HTTP check; stop deregisters before the container stops.
func TestRegistration(t *testing.T) {
	consul := consultest.StartServer(t, &consultest.Options{Dev: true})
	cfg := api.DefaultConfig()
	cfg.Address = consul.HTTPAddr(0)
	capi, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := sharedEngine(t, engineDocker)
	// A token the dev agent ignores, to see it never reaches the
	// container or any other process.
	const token = "5b8e2d14-hafw-docker-service-consul-token"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newService(t, d, imageRegistrator, map[string]string{"register": "true", "consul_address": consul.HTTPAddr(0), "token_file": tokenFile})
	extra := map[string]string{"OCF_RESKEY_service_port": strconv.Itoa(s.port), "OCF_RESKEY_CRM_meta_on_node": "node1"}

	got := s.Run("monitor", map[string]string{"OCF_RESKEY_CRM_meta_interval": ""})
	if got.Code != ocf.Misconfigured || !strings.Contains(got.Reason, "register=true needs service_port") {
		t.Errorf("probe without service_port = %v %q", got.Code, got.Reason)
	}
	started := s.must(t, "start", extra, ocf.Success)
	for _, where := range ocftest.SecretExposures(token, []ocftest.Result{started}, nil, []string{filepath.Dir(s.record)}) {
		t.Errorf("the Consul token shows in %s", where)
	}
	services, err := capi.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	var reg *api.AgentService
	for _, svc := range services {
		if svc.Service == "hafw-web" {
			reg = svc
		}
	}
	if reg == nil {
		t.Fatalf("no hafw-web service registered: %v", services)
	}
	if reg.Port != s.port || !slices.Equal(reg.Tags, []string{"blue", "green"}) || reg.Address != "" {
		t.Errorf("registration %+v: want port %d, tags blue and green, no address (Consul's node address)", reg, s.port)
	}
	waitPassing := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			checks, _, err := capi.Health().Checks("hafw-web", nil)
			if err == nil && len(checks) == 1 && checks[0].Status == want {
				if !strings.Contains(checks[0].Name, "http") {
					t.Errorf("check %q, want the SERVICE_CHECK_HTTP check", checks[0].Name)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("checks of hafw-web: %v %v, want one %s", checks, err, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitPassing(api.HealthPassing)
	recurringOn := map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"}
	for k, v := range extra {
		recurringOn[k] = v
	}
	s.must(t, "monitor", recurringOn, ocf.Success)

	// A registration removed behind the agent's back fails the monitor.
	if err := capi.Agent().ServiceDeregister(reg.ID); err != nil {
		t.Fatal(err)
	}
	if got := s.must(t, "monitor", recurringOn, ocf.GenericFailure); !strings.Contains(got.Reason, "not registered in Consul") {
		t.Errorf("monitor reason %q", got.Reason)
	}
	s.must(t, "start", extra, ocf.Success)
	waitPassing(api.HealthPassing)

	got = s.must(t, "stop", extra, ocf.Success)
	withdrawn, stopped := strings.Index(got.Stderr, "registration withdrawn"), strings.Index(got.Stderr, "container stopped and removed")
	if withdrawn < 0 || stopped < 0 || withdrawn > stopped {
		t.Errorf("stop did not deregister before stopping the container:\n%s", got.Stderr)
	}
	if services, _ := capi.Agent().Services(); len(services) != 0 {
		t.Errorf("services left after stop: %v", services)
	}

	// A probe that finds the container stopped but the service registered
	// (a node back from a power loss: Consul restored the registration)
	// withdraws the registration and reports "not running": a failure
	// would make Pacemaker believe the resource active on two nodes and
	// stop it where it runs.
	s.must(t, "start", extra, ocf.Success)
	if _, err := s.d.Client(t).ContainerKill(context.Background(), s.name, client.ContainerKillOptions{}); err != nil {
		t.Fatal(err)
	}
	probeOn := map[string]string{"OCF_RESKEY_CRM_meta_interval": ""}
	for k, v := range extra {
		probeOn[k] = v
	}
	got = s.must(t, "monitor", probeOn, ocf.NotRunning)
	if !strings.Contains(got.Stderr, "still registered; registration withdrawn") {
		t.Errorf("probe did not say it withdrew the registration:\n%s", got.Stderr)
	}
	if services, _ := capi.Agent().Services(); len(services) != 0 {
		t.Errorf("services left after the probe: %v", services)
	}
	s.must(t, "stop", extra, ocf.Success)
	if services, _ := capi.Agent().Services(); len(services) != 0 {
		t.Errorf("services left after stop: %v", services)
	}

	// The same after a reboot (the state directory, a tmpfs, emptied)
	// with the container gone: the image's labels name the service.
	s.must(t, "start", extra, ocf.Success)
	if _, err := s.d.Client(t).ContainerRemove(context.Background(), s.name, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	state, err := filepath.Glob(filepath.Join(filepath.Dir(s.record), "*"))
	if err != nil || len(state) == 0 {
		t.Fatalf("no state files: %v", err)
	}
	for _, f := range state {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	got = s.must(t, "monitor", probeOn, ocf.NotRunning)
	if services, _ := capi.Agent().Services(); len(services) != 0 {
		t.Errorf("services left after the probe of a removed container: %v\n%s", services, got.Stderr)
	}
	s.must(t, "stop", extra, ocf.Success)
}
