//go:build integration

package registration

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// The agent's start and stop killed as pacemaker-execd kills them at
// their timeout (SIGKILL to the agent's process group): start once the
// instance is registered but before its checks pass (wait_for=passing),
// stop in the middle of its drain (the instance in maintenance). Each is
// followed by what Pacemaker runs next (ocftest.Recover), and an
// interrupted stop also by a start without a stop in between, as when
// the resource comes back to the node. TestInterruptedReload kills a
// reload-agent.
func TestInterrupted(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	checkPort := freePorts(t, 1)[0]
	checkAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(checkPort))
	params := map[string]string{"consul_address": d.addr, "service_name": "intr", "service_port": "8443",
		"check_tcp": checkAddr, "check_interval": "1s", "wait_for": "passing", "drain_period": "5s"}
	env := map[string]string{"OCF_RESOURCE_INSTANCE": "intr-reg", "OCF_RESKEY_CRM_meta_on_node": "node1"}
	r := runner(t, "intr-reg", params)
	env["HA_RSCTMP"] = r.StateDir()
	killed := ocftest.NewSelfRunner(t, ocftest.Config{Name: "directory-registration", Params: params, Env: env})
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const id = "intr-node1"
	cleanup := t.Cleanup

	registered := func() bool {
		services, err := d.api.Agent().Services()
		return err == nil && services[id] != nil
	}
	inMaintenance := func() bool {
		checks, err := d.api.Agent().Checks()
		return err == nil && checks[api.ServiceMaintPrefix+id] != nil
	}
	interrupt := func(t *testing.T, action string, at func() bool) {
		t.Helper()
		ocftest.Interrupted(t, ctx, killed, ocftest.Interruption{Action: action, At: at})
	}
	deregistered := func(t *testing.T) func() {
		return func() {
			if registered() {
				t.Errorf("%s is still registered after stop", id)
			}
			if inMaintenance() {
				t.Errorf("%s's maintenance check is left after stop", id)
			}
		}
	}
	serving := func(t *testing.T) {
		t.Helper()
		if inMaintenance() {
			t.Errorf("%s is still in maintenance after start", id)
		}
		if e := catalogEntry(t, d, "intr", id); e == nil || e.Checks.AggregatedStatus() != api.HealthPassing {
			t.Errorf("%s is not passing in the catalog after start: %+v", id, e)
		}
	}

	t.Run("start, registered, checks not passing", func(t *testing.T) {
		interrupt(t, ocf.ActionStart, registered)
		// The service comes up: its check can pass now.
		l, err := net.Listen("tcp", checkAddr)
		if err != nil {
			t.Fatal(err)
		}
		// Open for the later subtests too.
		cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		// Registered, its check critical: running, degraded.
		ocftest.Recover(t, r, []ocf.Code{ocf.Degraded}, deregistered(t))
		serving(t)
	})

	t.Run("stop, draining", func(t *testing.T) {
		interrupt(t, ocf.ActionStop, inMaintenance)
		// Still registered, in the maintenance of its unfinished
		// stop: failed, so that Pacemaker stops and starts it rather
		// than leave it out of discovery.
		ocftest.Recover(t, r, []ocf.Code{ocf.GenericFailure}, deregistered(t))
		serving(t)
	})

	t.Run("stop, draining, then start", func(t *testing.T) {
		interrupt(t, ocf.ActionStop, inMaintenance)
		must(t, r, ocf.ActionMonitor, recurring, ocf.GenericFailure)
		must(t, r, ocf.ActionStart, nil, ocf.Success)
		must(t, r, ocf.ActionMonitor, recurring, ocf.Success)
		serving(t)
	})
}

// TestInterruptedReload kills a reload-agent that changes the service ID
// after it registered the new ID and before it withdrew the old one: both
// registrations are this resource's. The agent talks to the real Consul
// through holdingProxy, which holds the withdrawal until the kill, a
// point too short to hit otherwise. Pacemaker then stops and starts the
// resource with the new parameters (ocftest.Recover): the stop must
// withdraw both registrations, the start register the new ID alone.
func TestInterruptedReload(t *testing.T) {
	t.Parallel()
	d := startConsul(t, "")
	proxy := newHoldingProxy(t, d.addr, "/v1/agent/service/deregister/")
	params := map[string]string{"consul_address": proxy.addr, "service_name": "rel", "service_port": "8443",
		"check_ttl": "30s", "drain_period": "0"}
	r := runner(t, "rel-reg", params)
	t.Cleanup(func() { r.Run(ocf.ActionStop, nil) })
	must(t, r, ocf.ActionStart, nil, ocf.Success)
	newID := map[string]string{"OCF_RESKEY_service_id": "rel-blue"}
	env := r.Env()
	killed := ocftest.NewSelfRunner(t, ocftest.Config{Name: "directory-registration", Env: env})
	env["OCF_RESKEY_service_id"] = "rel-blue"
	after := ocftest.NewRunner(t, New(), ocftest.Config{Name: "directory-registration", Env: env})
	t.Cleanup(func() { after.Run(ocf.ActionStop, nil) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	res, err := killed.Interrupt(ctx, ocftest.Interruption{Action: ocf.ActionReloadAgent, Extra: newID, At: proxy.holding})
	proxy.release()
	if err != nil {
		t.Fatalf("reload-agent not interrupted: %v\n%s", err, res.Stderr)
	}
	services, err := d.api.Agent().Services()
	if err != nil || services["rel-node1"] == nil || services["rel-blue"] == nil {
		t.Fatalf("after the killed reload, registrations %v (%v), want rel-node1 and rel-blue", services, err)
	}
	ocftest.Recover(t, after, []ocf.Code{ocf.Success, ocf.Degraded, ocf.GenericFailure}, func() {
		if services, err := d.api.Agent().Services(); err != nil || len(services) != 0 {
			t.Errorf("registrations left after stop: %v (%v)", services, err)
		}
	})
	if services, _ := d.api.Agent().Services(); len(services) != 1 || services["rel-blue"] == nil {
		t.Errorf("after the start, registrations %v, want rel-blue alone", services)
	}
}

// holdingProxy forwards HTTP requests to a real Consul, except, until
// release, those whose path starts with a prefix, which it holds (until
// release, or until their client goes) and then drops: a Consul that
// does not answer one kind of request for a while, so that a test can
// kill the agent waiting for it.
type holdingProxy struct {
	addr    string
	held    chan struct{} // closed at the first held request
	done    chan struct{} // closed by release
	once    sync.Once
	release func()
}

func newHoldingProxy(t *testing.T, target, prefix string) *holdingProxy {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	p := &holdingProxy{held: make(chan struct{}), done: make(chan struct{})}
	var releaseOnce sync.Once
	p.release = func() { releaseOnce.Do(func() { close(p.done) }) }
	forward := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, prefix) && !p.released() {
			p.once.Do(func() { close(p.held) })
			select {
			case <-p.done:
			case <-r.Context().Done():
			}
			http.Error(w, "held by the test", http.StatusServiceUnavailable)
			return
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { p.release(); srv.Close() })
	p.addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// holding reports whether a request has been held.
func (p *holdingProxy) holding() bool {
	select {
	case <-p.held:
		return true
	default:
		return false
	}
}

func (p *holdingProxy) released() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
