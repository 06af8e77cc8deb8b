package nginxconf

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/routes"
)

var update = flag.Bool("update", false, "rewrite testdata/*.conf")

func settings() Settings {
	rs, _ := routes.Parse("/orders/=orders=127.0.0.1:8081,/v1=v1=https://10.0.0.1:8443,api.example.com/=web=127.0.0.1:8082=mtls")
	return Settings{Routes: rs, Listen: "0.0.0.0:443", RedirectListen: "0.0.0.0:80",
		CertFile: "/etc/gw/cert.pem", KeyFile: "/etc/gw/key.pem", ClientCAFile: "/etc/gw/ca.pem",
		PrivateDir: "/run/gw/private", TempDir: "/run/gw/tmp", User: "nobody nogroup",
		LoadModules: []string{"/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so"},
		LuaCPath:    []string{"/usr/lib/x86_64-linux-gnu/lua/5.1"}, IdentityPrefix: "X-Auth-", SubjectHeader: "X-Auth-Subject",
		IssuerHeader: "X-Auth-Issuer", TokenCache: true, MaxTokenBytes: 8192,
		ClaimHeaders: []ClaimHeader{{Claim: "email", Header: "X-Auth-Email"}, {Claim: "https://example.com/roles", Header: "X-Auth-Roles"}}}
}

func TestRenderGolden(t *testing.T) {
	got, err := Render(settings())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "gateway.conf")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s is stale (go test -update) (-want +got):\n%s", golden, diff)
	}
}

// TestRenderRefuses: nothing that could change the configuration's
// meaning reaches it, even past the callers' validation.
func TestRenderRefuses(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Settings)
		reason string
	}{
		{"cert path with a semicolon", func(s *Settings) { s.CertFile = "/etc/x;include /etc/passwd" }, "must be absolute"},
		{"listen with a space", func(s *Settings) { s.Listen = "0.0.0.0:443 ssl; x" }, "host:port"},
		{"header with a quote", func(s *Settings) { s.SubjectHeader = `X-Auth-"` }, "header name"},
		{"subject header outside the prefix", func(s *Settings) { s.SubjectHeader = "Remote-User" }, "must begin with the identity prefix"},
		{"mtls without a CA", func(s *Settings) { s.ClientCAFile = "" }, "no client CA file"},
		{"worker user with a brace", func(s *Settings) { s.User = "nobody}" }, "not a user name"},
		{"no routes", func(s *Settings) { s.Routes = nil }, "no routes"},
		{"log level", func(s *Settings) { s.LogLevel = "crit; x" }, "log level"},
		{"service with a quote", func(s *Settings) { s.Routes[0].Service = `orders", true) os.exit(` }, "service"},
		{"upstream with a semicolon", func(s *Settings) { s.Routes[0].Upstream = "http://127.0.0.1:8081; include /etc/passwd" }, "upstream"},
		{"upstream not normalized", func(s *Settings) { s.Routes[0].Upstream = "127.0.0.1:8081" }, "upstream"},
		{"claim with a quote", func(s *Settings) { s.ClaimHeaders[0].Claim = `email", x = "` }, "claim"},
		{"claim header with a space", func(s *Settings) { s.ClaimHeaders[0].Header = "X-Auth Email" }, "letters, digits and -"},
		{"claim header outside the prefix", func(s *Settings) { s.ClaimHeaders[0].Header = "X-Email" }, "must begin with the identity prefix"},
		{"claim header is the subject header", func(s *Settings) { s.ClaimHeaders[0].Header = "x-auth-subject" }, "used twice"},
		{"claim header twice", func(s *Settings) { s.ClaimHeaders[1].Header = "X-AUTH-EMAIL" }, "used twice"},
		{"too many claim headers", func(s *Settings) {
			for i := range MaxClaimHeaders {
				s.ClaimHeaders = append(s.ClaimHeaders, ClaimHeader{Claim: "c", Header: fmt.Sprintf("X-Auth-C%d", i)})
			}
		}, "exceed"},
	}
	for _, c := range cases {
		s := settings()
		c.change(&s)
		if _, err := Render(s); err == nil || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.reason)
		}
	}
}

func TestParseClaimHeaders(t *testing.T) {
	got, err := ParseClaimHeaders("email=X-Auth-Email, https://example.com/roles=X-Auth-Roles")
	want := []ClaimHeader{{"email", "X-Auth-Email"}, {"https://example.com/roles", "X-Auth-Roles"}}
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for _, c := range []struct{ v, reason string }{
		{"email", "want CLAIM=HEADER"},
		{"email=X-Auth-Email=x", "letters, digits and -"},
		{"em ail=X", "want CLAIM=HEADER"},
		{"a=X-A,b=x-a", "used twice"},
		{`e"=X-A`, "claim"},
	} {
		if _, err := ParseClaimHeaders(c.v); err == nil || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%q: %v, want an error containing %q", c.v, err, c.reason)
		}
	}
}
