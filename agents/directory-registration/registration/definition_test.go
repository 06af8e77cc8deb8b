package registration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestParseDefinition reads the definitions in testdata/: the reference
// example, Consul's documentation examples in its file and API forms, and
// one of every supported check type.
func TestParseDefinition(t *testing.T) {
	tests := []struct {
		file string
		want *api.AgentServiceRegistration
	}{
		{"reference-orders.json", &api.AgentServiceRegistration{
			ID: "orders-node1", Name: "orders", Tags: []string{"v1"}, Address: "10.0.0.11", Port: 8443,
			Meta:            map[string]string{"node": "node1"},
			TaggedAddresses: map[string]api.ServiceAddress{"lan": {Address: "10.0.0.11", Port: 8443}},
			Weights:         &api.AgentWeights{Passing: 10, Warning: 1},
			Checks: api.AgentServiceChecks{{CheckID: "orders-ttl", Name: "pacemaker monitor", TTL: "30s",
				DeregisterCriticalServiceAfter: "5m0s"}},
		}},
		{"web-http.json", &api.AgentServiceRegistration{
			Name: "web", Tags: []string{"rails"}, Port: 80, Meta: map[string]string{"version": "4.1"},
			Checks: api.AgentServiceChecks{{CheckID: "web-http", Name: "HTTP API on port 80", HTTP: "https://localhost:5000/health",
				Method: "POST", Header: map[string][]string{"Content-Type": {"application/json"}}, Body: `{"method":"health"}`,
				TLSSkipVerify: true, Interval: "10s", Timeout: "1s"}},
		}},
		{"api-camelcase.json", &api.AgentServiceRegistration{
			ID: "redis1", Name: "redis", Tags: []string{"primary", "v1"}, Address: "127.0.0.1", Port: 8000,
			Meta: map[string]string{"redis_version": "4.0"}, Weights: &api.AgentWeights{Passing: 10, Warning: 1},
			Checks: api.AgentServiceChecks{{CheckID: "redis-tcp", TCP: "127.0.0.1:8000", Interval: "10s", Timeout: "5s",
				DeregisterCriticalServiceAfter: "1h30m0s"}},
		}},
		{"every-type.json", &api.AgentServiceRegistration{
			Name: "billing", Port: 9090,
			Checks: api.AgentServiceChecks{
				{Args: []string{"/usr/local/bin/check-billing", "--quick"}, Interval: "30s", Timeout: "10s"},
				{HTTP: "http://127.0.0.1:9090/healthz", Interval: "5s", SuccessBeforePassing: 2, FailuresBeforeCritical: 3},
				{TCP: "127.0.0.1:9090", Interval: "5s"},
				{GRPC: "127.0.0.1:9091/billing.Health", GRPCUseTLS: true, Interval: "10s"},
				{Name: "pacemaker", TTL: "1m0s", Status: "passing", Notes: "refreshed by the Pacemaker monitor"},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseDefinition(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseDefinition (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseDefinitionRejects checks that every mistake is reported with
// the field it is in, in the words an administrator can act on.
func TestParseDefinitionRejects(t *testing.T) {
	files := []struct{ file, want string }{
		{"bad/invalid-json.json", "not valid JSON: invalid character ']' looking for beginning of value (line 2)"},
		{"bad/unknown-check-key.json", "service.checks[0].ttl_status: unknown field"},
		{"bad/docker-check.json", "service.checks[0].docker_container_id: docker checks are not supported; use args, http, tcp, grpc or ttl"},
		{"bad/no-check-type.json", "service.checks[0]: no check type: set one of args (script), http, tcp, grpc or ttl"},
		{"bad/two-check-types.json", "service.checks[0]: sets both service.checks[0].http and service.checks[0].tcp; a check has one type"},
		{"bad/services-list.json", "services: one service per resource"},
		{"bad/token-inline.json", "service.token: a token in the definition would be a secret outside token_file"},
		{"bad/unknown-service-key.json", "service.prot: unknown field"},
		{"bad/reserved-meta.json", "service.meta: key ha_resource is set by the agent; remove it"},
		{"bad/http-without-interval.json", "service.checks[0].interval: required for http checks"},
		{"bad/old-script.json", "service.checks[0].script: removed in Consul 1.1; use \"args\""},
	}
	for _, tt := range files {
		t.Run(tt.file, func(t *testing.T) {
			_, err := ParseDefinition(readTestdata(t, tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseDefinition error = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "b1gs33cr3t") {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}

	inline := []struct{ name, json, want string }{
		{"empty", "", "empty; expected a JSON object"},
		{"not an object", `["web"]`, "the definition must be a JSON object"},
		{"trailing data", `{"name": "a"} {"name": "b"}`, "more data after the first value"},
		{"no name", `{"service": {"port": 80}}`, "service.name: required"},
		{"bad name", `{"name": "web app"}`, `name: "web app" must be up to 128 letters`},
		{"bad id", `{"name": "web", "id": "web/1"}`, `id: "web/1" must be up to 256 letters`},
		{"port zero", `{"name": "web", "port": 0}`, "port: must be from 1 to 65535"},
		{"port string", `{"name": "web", "port": "80"}`, "port: must be an integer"},
		{"port too big", `{"name": "web", "port": 70000}`, "port: must be from 1 to 65535"},
		{"key twice", `{"name": "web", "Name": "web2"}`, `given twice`},
		{"empty tag", `{"name": "web", "tags": ["a", " "]}`, "tags[1]: empty tag"},
		{"consul meta prefix", `{"name": "web", "meta": {"consul-x": "1"}}`, "the prefix consul- is reserved"},
		{"meta not strings", `{"name": "web", "meta": {"n": 1}}`, "meta: must be an object of strings"},
		{"bad address", `{"name": "web", "address": "10.0.0.1:80"}`, "address: \"10.0.0.1:80\" is not an IP address or host name"},
		{"weights zero", `{"name": "web", "weights": {"passing": 0}}`, "weights.passing: must be from 1 to 65535"},
		{"weights unknown", `{"name": "web", "weights": {"critical": 1}}`, "weights.critical: unknown field"},
		{"connect", `{"name": "web", "connect": {"native": true}}`, "connect: Connect is not supported"},
		{"checks not a list", `{"name": "web", "checks": {"ttl": "1s"}}`, "checks: must be a list of checks"},
		{"check not an object", `{"name": "web", "checks": ["ttl"]}`, "checks[0] must be a JSON object"},
		{"ttl with interval", `{"name": "web", "check": {"ttl": "30s", "interval": "10s"}}`, "check.interval: applies to script (args), http, tcp and grpc checks only, not to ttl checks"},
		{"method on tcp", `{"name": "web", "check": {"tcp": "127.0.0.1:80", "method": "GET", "interval": "10s"}}`, "check.method: applies to http checks only"},
		{"bad url", `{"name": "web", "check": {"http": "localhost:80/health", "interval": "10s"}}`, "check.http: \"localhost:80/health\" is not an http:// or https:// URL"},
		{"bad tcp", `{"name": "web", "check": {"tcp": "localhost", "interval": "10s"}}`, "check.tcp: \"localhost\" is not host:port"},
		{"bad grpc", `{"name": "web", "check": {"grpc": "localhost", "interval": "10s"}}`, "check.grpc: \"localhost\" is not host:port or host:port/service"},
		{"empty args", `{"name": "web", "check": {"args": [], "interval": "10s"}}`, "check.args: must name a program"},
		{"interval without unit", `{"name": "web", "check": {"tcp": "127.0.0.1:80", "interval": "10"}}`, "check.interval: must be a duration of at least 1s"},
		{"interval too short", `{"name": "web", "check": {"tcp": "127.0.0.1:80", "interval": "100ms"}}`, "check.interval: must be a duration of at least 1s"},
		{"zero ttl", `{"name": "web", "check": {"ttl": "0s"}}`, "check.ttl: must be a positive duration"},
		{"short deregister", `{"name": "web", "check": {"ttl": "30s", "deregister_critical_service_after": "30s"}}`, "deregister_critical_service_after: must be a duration of at least 1m"},
		{"bad status", `{"name": "web", "check": {"ttl": "30s", "status": "ok"}}`, `check.status: "ok" is not passing, warning or critical`},
		{"check id twice", `{"name": "web", "checks": [{"id": "a", "ttl": "30s"}, {"CheckID": "a", "ttl": "30s"}]}`, `check id "a" is used twice`},
		{"id and check_id", `{"name": "web", "check": {"id": "a", "check_id": "b", "ttl": "30s"}}`, "given twice"},
		{"service_id in check", `{"name": "web", "check": {"service_id": "x", "ttl": "30s"}}`, "check.service_id: a check inside a service definition belongs to that service"},
		{"bad header", `{"name": "web", "check": {"http": "http://a/", "header": {"X": "y"}, "interval": "10s"}}`, "check.header: must be an object of string lists"},
		{"negative counter", `{"name": "web", "check": {"tcp": "127.0.0.1:80", "interval": "10s", "failures_before_critical": -1}}`, "check.failures_before_critical: must be from 0 to 1000"},
		{"beside service", `{"service": {"name": "web"}, "extra": 1}`, "extra: unknown field beside \"service\""},
		{"service twice", `{"service": {"name": "web"}, "service": {"name": "evil", "check": {"args": ["/bin/sh"], "interval": "10s"}}}`, "service: given twice"},
		{"service case variant", `{"service": {"name": "web"}, "Service": {"name": "evil"}}`, `given twice (also as "Service")`},
		{"key twice exactly", `{"service": {"name": "web", "port": 1, "port": 2}}`, "service.port: given twice"},
		{"meta key twice", `{"name": "web", "meta": {"a": "1", "a": "2"}}`, "meta.a: given twice"},
		{"check key twice", `{"name": "web", "checks": [{"ttl": "30s"}, {"ttl": "30s", "name": "a", "name": "b"}]}`, "checks[1].name: given twice"},
		{"tag with a line break", `{"name": "web", "tags": ["a", "b\nhaproxy-option"]}`, "tags[1]: must not contain U+000A (byte 1)"},
		{"tag with a right-to-left override", `{"name": "web", "tags": ["a\u202e"]}`, "tags[0]: must not contain U+202E (byte 1)"},
		{"meta value with an escape", `{"name": "web", "meta": {"v": "1\u001b[2J"}}`, "meta: value of v must not contain U+001B (byte 1)"},
		{"header twice", `{"name": "web", "check": {"http": "http://a/", "header": {"X": ["1"], "X": ["2"]}, "interval": "10s"}}`, "check.header.X: given twice"},
	}
	for _, tt := range inline {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDefinition([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseDefinition(%s) error = %v, want it to contain %q", tt.json, err, tt.want)
			}
		})
	}
}

func TestParseDefinitionAcceptsNull(t *testing.T) {
	got, err := ParseDefinition([]byte(`{"name": "web", "port": null, "tags": null, "check": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&api.AgentServiceRegistration{Name: "web"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestComplete(t *testing.T) {
	one := &api.AgentServiceRegistration{Name: "orders", Port: 8443, Meta: map[string]string{"team": "a"},
		Checks: api.AgentServiceChecks{{TTL: "30s"}}}
	got := complete(one, identity{resource: "orders-reg", node: "node1.example.com", deregisterAfter: 10 * time.Minute})
	want := &api.AgentServiceRegistration{ID: "orders-node1.example.com", Name: "orders", Port: 8443,
		Meta:   map[string]string{"team": "a", "ha_resource": "orders-reg", "ha_definition": got.Meta["ha_definition"]},
		Checks: api.AgentServiceChecks{{CheckID: "service:orders-node1.example.com", TTL: "30s", DeregisterCriticalServiceAfter: "10m0s"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("complete (-want +got):\n%s", diff)
	}
	if len(got.Meta["ha_definition"]) != 16 {
		t.Errorf("ha_definition = %q, want 16 hex digits", got.Meta["ha_definition"])
	}
	if one.ID != "" || len(one.Meta) != 1 || one.Checks[0].CheckID != "" {
		t.Errorf("complete changed its input: %+v", one)
	}

	two := &api.AgentServiceRegistration{ID: "o1", Name: "orders",
		Check:  &api.AgentServiceCheck{TCP: "127.0.0.1:1", Interval: "10s", DeregisterCriticalServiceAfter: "1h0m0s"},
		Checks: api.AgentServiceChecks{{CheckID: "mine", TTL: "30s"}}}
	got = complete(two, identity{resource: "r", node: "n"})
	var ids, dcsa []string
	for _, c := range got.Checks {
		ids, dcsa = append(ids, c.CheckID), append(dcsa, c.DeregisterCriticalServiceAfter)
	}
	if diff := cmp.Diff([]string{"service:o1:1", "mine"}, ids); diff != "" {
		t.Errorf("check IDs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1h0m0s", ""}, dcsa); diff != "" {
		t.Errorf("deregister_critical_service_after with the safety net off (-want +got):\n%s", diff)
	}
	if got.Check != nil {
		t.Errorf("Check = %+v, want every check in Checks", got.Check)
	}

	// The node name is made safe for an ID.
	if got := complete(&api.AgentServiceRegistration{Name: "a"}, identity{node: "node 1/x"}); got.ID != "a-node-1-x" {
		t.Errorf("ID = %q", got.ID)
	}
}

// TestDigest checks that the digest follows the definition and nothing
// else: equal definitions agree, any change shows.
func TestDigest(t *testing.T) {
	base := func() *api.AgentServiceRegistration {
		return &api.AgentServiceRegistration{Name: "orders", Port: 1, Tags: []string{"a"},
			Meta: map[string]string{"x": "1", "y": "2"}, Checks: api.AgentServiceChecks{{TTL: "30s"}}}
	}
	id := identity{resource: "r", node: "n"}
	d0 := complete(base(), id).Meta[metaDefinition]
	if d := complete(base(), id).Meta[metaDefinition]; d != d0 {
		t.Errorf("digest not stable: %s, %s", d0, d)
	}
	changes := map[string]func(*api.AgentServiceRegistration){
		"port":      func(r *api.AgentServiceRegistration) { r.Port = 2 },
		"tag":       func(r *api.AgentServiceRegistration) { r.Tags = []string{"b"} },
		"meta":      func(r *api.AgentServiceRegistration) { r.Meta["x"] = "3" },
		"check ttl": func(r *api.AgentServiceRegistration) { r.Checks[0].TTL = "31s" },
	}
	for name, change := range changes {
		r := base()
		change(r)
		if d := complete(r, id).Meta[metaDefinition]; d == d0 {
			t.Errorf("changing the %s keeps the digest %s", name, d)
		}
	}
	if d := complete(base(), identity{resource: "other", node: "n"}).Meta[metaDefinition]; d == d0 {
		t.Error("another resource gets the same digest")
	}
}

func TestDrift(t *testing.T) {
	want := complete(&api.AgentServiceRegistration{Name: "orders", Port: 8443, Tags: []string{"v1"},
		TaggedAddresses: map[string]api.ServiceAddress{"lan": {Address: "10.0.0.1", Port: 8443}},
		Checks:          api.AgentServiceChecks{{TTL: "30s"}}}, identity{resource: "r", node: "n1"})
	same := func() *api.AgentService {
		// As Consul's agent returns it: weights filled in, its own
		// tagged addresses added.
		return &api.AgentService{ID: want.ID, Service: "orders", Port: 8443, Tags: []string{"v1"},
			Meta:            map[string]string{"ha_resource": "r", "ha_definition": want.Meta["ha_definition"]},
			Weights:         api.AgentWeights{Passing: 1, Warning: 1},
			TaggedAddresses: map[string]api.ServiceAddress{"lan": {Address: "10.0.0.1", Port: 8443}, "lan_ipv4": {Address: "10.0.0.1", Port: 8443}}}
	}
	checks := []string{"service:orders-n1"}
	tests := []struct {
		name   string
		got    func() *api.AgentService
		checks []string
		want   []string
	}{
		{"same", same, checks, nil},
		{"missing", func() *api.AgentService { return nil }, nil, []string{"service orders-n1 is not registered"}},
		{"port", func() *api.AgentService { s := same(); s.Port = 1; return s }, checks, []string{"port is 1, want 8443"}},
		{"tags", func() *api.AgentService { s := same(); s.Tags = nil; return s }, checks, []string{"tags is [], want [v1]"}},
		{"tagged address", func() *api.AgentService { s := same(); delete(s.TaggedAddresses, "lan"); return s }, checks,
			[]string{"tagged address lan is { 0}, want {10.0.0.1 8443}"}},
		{"check gone", same, nil, []string{"checks is [], want [service:orders-n1]"}},
		{"extra check", same, []string{"service:orders-n1", "x"}, []string{"checks is [service:orders-n1 x], want [service:orders-n1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, drift(want, tt.got(), tt.checks)); diff != "" {
				t.Errorf("drift (-want +got):\n%s", diff)
			}
		})
	}
	// A changed definition shows through the digest alone.
	s := same()
	s.Meta["ha_definition"] = "0000000000000000"
	if d := drift(want, s, checks); len(d) != 1 || !strings.HasPrefix(d[0], "meta is") {
		t.Errorf("drift with another digest = %q", d)
	}
}

func TestHealth(t *testing.T) {
	check := func(id, status, output string) *api.AgentCheck {
		return &api.AgentCheck{CheckID: id, Name: "n-" + id, Status: status, Output: output}
	}
	tests := []struct {
		name   string
		checks []*api.AgentCheck
		want   checkHealth
	}{
		{"none", nil, checkHealth{status: api.HealthPassing}},
		{"passing", []*api.AgentCheck{check("a", "passing", "ok")}, checkHealth{status: api.HealthPassing}},
		{"warning", []*api.AgentCheck{check("a", "passing", ""), check("b", "warning", "slow\nmore")},
			checkHealth{api.HealthWarning, `check "n-b" (b) is warning: slow`}},
		{"first critical named", []*api.AgentCheck{check("a", "critical", "refused"), check("b", "warning", ""), check("c", "critical", "x")},
			checkHealth{api.HealthCritical, `check "n-a" (a) is critical: refused`}},
		{"maintenance wins", []*api.AgentCheck{check("a", "critical", ""), {CheckID: "_service_maintenance:s", Status: "critical", Notes: "Pacemaker is stopping"}},
			checkHealth{api.HealthMaint, "Pacemaker is stopping"}},
		{"unknown status is critical", []*api.AgentCheck{check("a", "weird", "")}, checkHealth{api.HealthCritical, `check "n-a" (a) is critical`}},
		{"escape sequences in the output", []*api.AgentCheck{check("a", "critical", "\x1b[2J\x1b]0;pwned\a\x1b[31mrefused\x1b[0m\r\vnow")},
			checkHealth{api.HealthCritical, `check "n-a" (a) is critical: refused now`}},
		{"bidirectional override in the name", []*api.AgentCheck{{CheckID: "a", Name: "n\u202eevil", Status: "warning"}},
			checkHealth{api.HealthWarning, `check "nevil" (a) is warning`}},
		{"long output cut on a character", []*api.AgentCheck{check("a", "warning", strings.Repeat("é", 100))},
			checkHealth{api.HealthWarning, `check "n-a" (a) is warning: ` + strings.Repeat("é", 58) + "..."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, health(tt.checks), cmp.AllowUnexported(checkHealth{})); diff != "" {
				t.Errorf("health (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFromParams(t *testing.T) {
	c := &Config{ServiceName: "orders", ServicePort: 8443, ServiceTags: []string{"a", "b"}, ServiceMeta: []string{"team=x", "tier=1"},
		CheckHTTP: "http://127.0.0.1:8443/health", CheckTTL: 30 * time.Second, CheckInterval: 5 * time.Second, CheckTimeout: time.Second}
	got, err := fromParams(c)
	if err != nil {
		t.Fatal(err)
	}
	want := &api.AgentServiceRegistration{Name: "orders", Port: 8443, Tags: []string{"a", "b"}, Meta: map[string]string{"team": "x", "tier": "1"},
		Checks: api.AgentServiceChecks{
			{Name: "orders http", HTTP: "http://127.0.0.1:8443/health", Interval: "5s", Timeout: "1s"},
			{Name: "Pacemaker monitor", TTL: "30s", Notes: "set to passing by every recurring monitor of the Pacemaker resource"},
		}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fromParams (-want +got):\n%s", diff)
	}
	if _, err := fromParams(&Config{}); err == nil || !strings.Contains(err.Error(), "set definition_file, or service_name") {
		t.Errorf("fromParams without a name: %v", err)
	}
	if _, err := fromParams(&Config{ServiceName: "a", ServiceMeta: []string{"ha_definition=x"}}); err == nil || !strings.Contains(err.Error(), "service_meta: key ha_definition is set by the agent") {
		t.Errorf("fromParams with a reserved meta key: %v", err)
	}
}
