package registration

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// deadAddress returns a loopback address where nothing listens.
func deadAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// TestBadInput checks the exit status and reason for what an
// administrator can get wrong, in each action's context: a probe reads
// this node's problems as "not running", a stop as done, validate-all
// and start report them; parameters wrong in themselves are fatal (6).
// None of these cases needs Consul: where Consul is asked, nothing
// listens.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	dead := deadAddress(t)
	good := writeFile(t, dir, "good.json", `{"service": {"name": "orders", "port": 8443, "checks": [{"ttl": "30s"}]}}`, 0o644)
	invalid := writeFile(t, dir, "invalid.json", string(readTestdata(t, "bad/invalid-json.json")), 0o644)
	docker := writeFile(t, dir, "docker.json", string(readTestdata(t, "bad/docker-check.json")), 0o644)
	unknownKey := writeFile(t, dir, "unknown.json", string(readTestdata(t, "bad/unknown-check-key.json")), 0o644)
	openToken := writeFile(t, dir, "open.token", "s3cr3t-t0ken", 0o644)
	missing := filepath.Join(dir, "missing.json")
	groupWritable := writeFile(t, dir, "group.json", `{"service": {"name": "orders"}}`, 0o664)
	worldWritable := writeFile(t, dir, "world.json", `{"service": {"name": "orders"}}`, 0o666)
	duplicate := writeFile(t, dir, "duplicate.json", `{"service": {"name": "orders", "port": 1, "port": 2}}`, 0o644)
	foreign := writeFile(t, dir, "foreign.json", `{"service": {"name": "orders"}}`, 0o644)
	chownErr := os.Chown(foreign, 65534, 65534)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	probe := map[string]string{"OCF_RESKEY_CRM_meta_interval": ""}
	recurring := map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"consul_address": dead}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name   string
		params map[string]string
		action string
		extra  map[string]string
		want   ocf.Code
		reason string
	}{
		{"definition file missing: validate", with("definition_file", missing), "validate-all", nil, ocf.NotInstalled, "definition_file " + missing + " does not exist on this node; create it"},
		{"definition file missing: start", with("definition_file", missing), "start", nil, ocf.NotInstalled, "does not exist on this node"},
		{"definition file missing: probe", with("definition_file", missing), "monitor", probe, ocf.NotRunning, ""},
		{"definition file missing: stop", with("definition_file", missing), "stop", nil, ocf.Success, ""},
		{"definition file relative", with("definition_file", "orders.json"), "validate-all", nil, ocf.Misconfigured, `definition_file="orders.json" is invalid: must be an absolute path`},
		{"definition file is a directory", with("definition_file", dir), "validate-all", nil, ocf.InvalidArgs, "definition_file: point it at a regular file (" + dir + " is a directory)"},
		{"definition file group writable: validate", with("definition_file", groupWritable), "validate-all", nil, ocf.InvalidArgs, "definition_file: run chmod go-w " + groupWritable + " (group or others may write it, mode 0664)"},
		{"definition file group writable: probe", with("definition_file", groupWritable), "monitor", probe, ocf.NotRunning, ""},
		{"definition file group writable: stop", with("definition_file", groupWritable), "stop", nil, ocf.Success, ""},
		{"definition file world writable", with("definition_file", worldWritable), "start", nil, ocf.InvalidArgs, "mode 0666)"},
		{"definition file owned by nobody", with("definition_file", foreign), "validate-all", nil, ocf.InvalidArgs, "definition_file: run chown root " + foreign + " (owned by uid 65534, not root)"},
		{"definition file a FIFO: validate", with("definition_file", fifo), "validate-all", nil, ocf.InvalidArgs, "definition_file: point it at a regular file (" + fifo + " is a FIFO)"},
		{"definition file a FIFO: probe", with("definition_file", fifo), "monitor", probe, ocf.NotRunning, ""},
		{"definition file a FIFO: stop", with("definition_file", fifo), "stop", nil, ocf.Success, ""},
		{"definition file duplicate key", with("definition_file", duplicate), "validate-all", nil, ocf.InvalidArgs, `service.port: given twice`},
		{"key file a FIFO: validate", with("definition_file", good, "consul_address", "https://"+dead, "ca_file", good, "cert_file", good, "key_file", fifo), "validate-all", nil, ocf.InvalidArgs, "key_file: point it at a regular file (" + fifo + " is a FIFO)"},
		{"key file a FIFO: stop", with("definition_file", good, "consul_address", "https://"+dead, "ca_file", good, "cert_file", good, "key_file", fifo), "stop", nil, ocf.Success, ""},
		{"ca file world writable", with("definition_file", good, "consul_address", "https://"+dead, "ca_file", worldWritable), "validate-all", nil, ocf.InvalidArgs, "ca_file: run chmod go-w " + worldWritable},
		{"check_args with a vertical tab", with("service_name", "orders", "check_args", "/bin/check\v--evil"), "validate-all", nil, ocf.Misconfigured, `check_args="/bin/check\v--evil" is invalid: must not contain control character U+000B (byte 10)`},
		{"check_http with a line separator", with("service_name", "orders", "check_http", "http://127.0.0.1/\u2028x"), "validate-all", nil, ocf.Misconfigured, "U+2028 (byte 17)"},
		{"consul_address with a carriage return", with("service_name", "orders", "consul_address", "127.0.0.1:8500\r"), "validate-all", nil, ocf.Misconfigured, "U+000D (byte 14)"},
		{"service_tags with NEL", with("service_name", "orders", "service_tags", "a,b\u0085c"), "validate-all", nil, ocf.Misconfigured, "U+0085 (byte 3)"},
		{"token file a FIFO: validate", with("definition_file", good, "token_file", fifo), "validate-all", nil, ocf.InvalidArgs, "token_file: point it at a regular file (" + fifo + " is a FIFO)"},
		{"token file a FIFO: probe", with("definition_file", good, "token_file", fifo), "monitor", probe, ocf.NotRunning, ""},
		{"token file a FIFO: stop", with("definition_file", good, "token_file", fifo), "stop", nil, ocf.Success, ""},
		{"invalid JSON: validate", with("definition_file", invalid), "validate-all", nil, ocf.InvalidArgs, "not valid JSON: invalid character ']' looking for beginning of value (line 2)"},
		{"invalid JSON: start", with("definition_file", invalid), "start", nil, ocf.InvalidArgs, "definition_file: not valid JSON"},
		{"invalid JSON: recurring monitor", with("definition_file", invalid), "monitor", recurring, ocf.InvalidArgs, "not valid JSON"},
		{"invalid JSON: probe", with("definition_file", invalid), "monitor", probe, ocf.NotRunning, ""},
		{"unknown check type", with("definition_file", docker), "validate-all", nil, ocf.InvalidArgs, "service.checks[0].docker_container_id: docker checks are not supported"},
		{"unknown check key", with("definition_file", unknownKey), "start", nil, ocf.InvalidArgs, "service.checks[0].ttl_status: unknown field"},
		{"neither file nor name", with(), "validate-all", nil, ocf.Misconfigured, "set definition_file, or service_name"},
		{"file and parameters", with("definition_file", good, "service_port", "80"), "start", nil, ocf.Misconfigured, "parameters definition_file and service_port exclude each other"},
		{"file and parameters: stop", with("definition_file", good, "service_port", "80"), "stop", nil, ocf.Success, ""},
		{"bad check_http", with("service_name", "orders", "check_http", "localhost:80"), "validate-all", nil, ocf.Misconfigured, `check_http="localhost:80" is invalid: "localhost:80" is not an http:// or https:// URL`},
		{"bad check_tcp", with("service_name", "orders", "check_tcp", "localhost"), "start", nil, ocf.Misconfigured, `check_tcp="localhost" is invalid`},
		{"bad service_name", with("service_name", "my service"), "validate-all", nil, ocf.Misconfigured, `service_name="my service" is invalid`},
		{"reserved service_meta", with("service_name", "orders", "service_meta", "ha_resource=x"), "validate-all", nil, ocf.Misconfigured, "key ha_resource is set by the agent"},
		{"bad consul_address", with("service_name", "orders", "consul_address", "localhost"), "validate-all", nil, ocf.Misconfigured, "must be host:port, http://host:port or https://host:port"},
		{"short deregister_critical_service_after", with("service_name", "orders", "deregister_critical_service_after", "30s"), "validate-all", nil, ocf.Misconfigured, "must be 0 (off) or at least 1m0s"},
		{"bad on_critical", with("service_name", "orders", "on_critical", "restart"), "validate-all", nil, ocf.Misconfigured, "not one of degraded, failure"},
		{"cert without key", with("service_name", "orders", "cert_file", good), "validate-all", nil, ocf.Misconfigured, "cert_file and key_file go together"},
		{"Consul unreachable: validate does not ask", with("definition_file", good), "validate-all", nil, ocf.Success, ""},
		{"Consul unreachable: start", with("definition_file", good), "start", nil, ocf.GenericFailure, "start Consul on this node first, or fix consul_address: " + dead + " does not answer (connection refused)"},
		{"Consul unreachable: probe", with("definition_file", good), "monitor", probe, ocf.NotRunning, ""},
		{"Consul unreachable: recurring monitor", with("definition_file", good), "monitor", recurring, ocf.GenericFailure, "does not answer (connection refused)"},
		{"Consul unreachable: stop", with("definition_file", good), "stop", nil, ocf.Success, ""},
		{"Consul unreachable: reload", with("definition_file", good), "reload-agent", nil, ocf.GenericFailure, "does not answer"},
		{"token file missing", with("definition_file", good, "token_file", "/nonexistent/consul.token"), "start", nil, ocf.InvalidArgs, "token_file file /nonexistent/consul.token does not exist on this node; create it with mode 0600"},
		{"token file relative", with("definition_file", good, "token_file", "consul.token"), "validate-all", nil, ocf.Misconfigured, `token_file="consul.token" is invalid: must be an absolute path`},
		{"token file too open: validate", with("definition_file", good, "token_file", openToken), "validate-all", nil, ocf.InvalidArgs, "chmod 600 " + openToken},
		{"token file too open: start", with("definition_file", good, "token_file", openToken), "start", nil, ocf.InvalidArgs, "group or others may read it, mode 0644"},
		{"token file too open: probe", with("definition_file", good, "token_file", openToken), "monitor", probe, ocf.NotRunning, ""},
		{"token file too open: stop", with("definition_file", good, "token_file", openToken), "stop", nil, ocf.Success, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.params["definition_file"] == foreign && chownErr != nil {
				t.Skipf("needs root to give a file to another user: %v", chownErr)
			}
			r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "directory-registration", Params: tt.params,
				Env: map[string]string{"OCF_RESKEY_CRM_meta_on_node": "node1", "OCF_RESKEY_CRM_meta_timeout": "5000"}})
			// A FIFO blocked the old agent forever, stop included: a
			// watchdog turns a hang into a failure.
			done := make(chan ocftest.Result, 1)
			go func() { done <- r.Run(tt.action, tt.extra) }()
			var got ocftest.Result
			select {
			case got = <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("%s still running after 20s", tt.action)
			}
			// A row without reason text asserts there is none: a success or a
			// clean "not running" writes no exit reason; a failure must name one.
			if tt.reason == "" && (got.Reason != "" || (tt.want != ocf.Success && tt.want != ocf.NotRunning)) {
				t.Errorf("%s = %v %q: a row expecting %v must name its reason, or expect none", tt.action, got.Code, got.Reason, tt.want)
			}
			if got.Code != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("%s = %v %q, want %v with %q", tt.action, got.Code, got.Reason, tt.want, tt.reason)
			}
			if tt.want != ocf.Success && tt.want != ocf.NotRunning && strings.Contains(got.Reason, "\n") {
				t.Errorf("exit reason spans lines: %q", got.Reason)
			}
			if strings.Contains(got.Stderr, "s3cr3t-t0ken") {
				t.Errorf("the token leaked into the output:\n%s", got.Stderr)
			}
		})
	}
}

func TestResourceKey(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"primitive", map[string]string{"OCF_RESOURCE_INSTANCE": "orders-reg"}, "orders-reg"},
		{"anonymous clone", map[string]string{"OCF_RESOURCE_INSTANCE": "orders-reg:3", "OCF_RESKEY_CRM_meta_clone_max": "3"}, "orders-reg"},
		{"globally unique clone", map[string]string{"OCF_RESOURCE_INSTANCE": "orders-reg:3", "OCF_RESKEY_CRM_meta_clone_max": "3",
			"OCF_RESKEY_CRM_meta_globally_unique": "true"}, "orders-reg:3"},
	}
	for _, tt := range tests {
		if got := resourceKey(ocf.MapEnv(tt.env)); got != tt.want {
			t.Errorf("%s: resourceKey = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestMetadata checks the declaration and that the meta-data, which pcs
// and crmsh show, validates and advertises the deep monitor and the
// reloadable definition parameters.
func TestMetadata(t *testing.T) {
	if err := New().CheckDeclaration(); err != nil {
		t.Fatal(err)
	}
	r := ocftest.NewRunner(t, New(), ocftest.Config{Name: "directory-registration"})
	got := r.Run("meta-data", nil)
	if got.Code != ocf.Success {
		t.Fatalf("meta-data returned %v", got.Code)
	}
	for _, want := range []string{
		`<action name="monitor" timeout="30s" interval="60s" depth="10"/>`,
		`<action name="reload-agent" timeout="30s"/>`,
		`<parameter name="definition_file" required="0" reloadable="1">`,
		`<parameter name="consul_address" required="0">`,
		"pcs resource create orders-reg ocf:ha-framework:directory-registration",
		"crm configure group orders-group orders orders-reg",
	} {
		if !strings.Contains(got.Stdout, want) {
			t.Errorf("meta-data lacks %s", want)
		}
	}
	ocftest.ValidateMetadata(t, []byte(got.Stdout))
}
