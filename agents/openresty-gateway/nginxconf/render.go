// Package nginxconf renders the gateway's nginx.conf: TLS listeners, one
// location per route whose access phase runs the Lua checks, the health
// location, and the companion's state endpoint on a unix socket.
package nginxconf

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/template"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/routes"
	"github.com/ha-framework/ha-framework/internal/charclass"
)

// HealthPath answers 200 without a token, for the monitor.
const HealthPath = "/.well-known/ha-gateway/health"

// Settings is everything the configuration depends on.
type Settings struct {
	Routes         []routes.Route
	Listen         string // host:port of the TLS listener
	RedirectListen string // host:port redirecting HTTP to HTTPS; "" for none
	CertFile       string
	KeyFile        string
	ClientCAFile   string // "" when no route asks for client certificates

	PrivateDir string // root-only: PID file, logs, Lua modules, state file, socket
	TempDir    string // nginx's temporary files (workers write there)
	User       string // "user group" for the workers; "" when not run as root
	Workers    int    // 0: one per CPU

	LoadModules []string // load_module paths, when the binary lacks Lua
	LuaCPath    []string // directories holding luaossl's _openssl.so and cjson.so

	IdentityPrefix string // client headers with this prefix are stripped
	SubjectHeader  string
	IssuerHeader   string
	ClaimHeaders   []ClaimHeader // verified claims passed to the upstream
	TokenCache     bool
	MaxTokenBytes  int
	LogLevel       string // error_log level; "" is notice (info logs every refusal)
}

// Files under PrivateDir.
const (
	PIDFile     = "nginx.pid"
	ErrorLog    = "error.log"
	StateFile   = "state.json"
	AdminSocket = "admin.sock"
	LuaDir      = "lua"
)

// Compiled on first use: every agent run (a monitor every few seconds)
// initializes the package, and few of them match anything.
var (
	safePath   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/[A-Za-z0-9._/+-]*$`) })
	safeListen = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+|\*):[0-9]{1,5}$`)
	})
	safeUser = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_][a-z0-9_-]*( [a-z_][a-z0-9_-]*)?$`) })
)

func (s *Settings) check() error {
	paths := []string{s.CertFile, s.KeyFile, s.PrivateDir, s.TempDir}
	if s.ClientCAFile != "" {
		paths = append(paths, s.ClientCAFile)
	}
	paths = append(paths, s.LoadModules...)
	paths = append(paths, s.LuaCPath...)
	for _, p := range paths {
		if !safePath().MatchString(p) {
			return fmt.Errorf("path %q must be absolute and hold only letters, digits and . _ / + -", p)
		}
	}
	for _, l := range []string{s.Listen, s.RedirectListen} {
		if l != "" && !safeListen().MatchString(l) {
			return fmt.Errorf("listen address %q must be host:port", l)
		}
	}
	for _, h := range []string{s.IdentityPrefix, s.SubjectHeader, s.IssuerHeader} {
		if !validHeaderName(h) {
			return fmt.Errorf("header name %q must be letters, digits and -", h)
		}
	}
	for _, h := range []string{s.SubjectHeader, s.IssuerHeader} {
		if !strings.HasPrefix(strings.ToLower(h), strings.ToLower(s.IdentityPrefix)) {
			return fmt.Errorf("header %s must begin with the identity prefix %s, so that client copies are stripped", h, s.IdentityPrefix)
		}
	}
	if err := CheckClaimHeaders(s.ClaimHeaders, s.IdentityPrefix, []string{s.SubjectHeader, s.IssuerHeader}); err != nil {
		return err
	}
	if s.User != "" && !safeUser().MatchString(s.User) {
		return fmt.Errorf("worker user %q is not a user name", s.User)
	}
	for _, r := range s.Routes {
		// The service is written into a Lua string and the upstream
		// into proxy_pass.
		if !acl.ValidService(r.Service) {
			return fmt.Errorf("route %s%s: service %q must be letters, digits, . _ -", r.Host, r.Prefix, r.Service)
		}
		if u, err := routes.Upstream(r.Upstream); err != nil || u != r.Upstream {
			return fmt.Errorf("route %s%s: upstream %q must be scheme://host:port", r.Host, r.Prefix, r.Upstream)
		}
		if r.MTLS && s.ClientCAFile == "" {
			return fmt.Errorf("route %s%s asks for client certificates but no client CA file is set", r.Host, r.Prefix)
		}
	}
	switch s.LogLevel {
	case "", "debug", "info", "notice", "warn", "error":
	default:
		return fmt.Errorf("log level %q is not one of debug info notice warn error", s.LogLevel)
	}
	if len(s.Routes) == 0 {
		return errors.New("no routes")
	}
	return nil
}

// ClaimHeader passes the verified claim Claim to the upstream in Header.
type ClaimHeader struct {
	Claim  string
	Header string
}

// MaxClaimHeaders bounds the claims passed in headers.
const MaxClaimHeaders = 16

// Header and claim names, matched without regular expressions (see
// package charclass): claim_headers is checked on every monitor. A claim
// name passed in a header is what token issuers use (also namespaced URLs
// such as https://example.com/roles), nothing that needs quoting.
var (
	headerChars = charclass.Of("A-Za-z0-9-")
	claimChars  = charclass.Of("A-Za-z0-9_.:/~+-")
)

func validHeaderName(s string) bool { return charclass.Word(s, headerChars, headerChars, 64) }

func validClaimName(s string) bool { return charclass.Word(s, claimChars, claimChars, 128) }

// ParseClaimHeaders reads CLAIM=HEADER pairs separated by commas or white
// space, e.g. "email=X-Auth-Email,groups=X-Auth-Groups".
//
// Return values: the pairs, or an error naming the first bad one.
func ParseClaimHeaders(v string) ([]ClaimHeader, error) {
	var out []ClaimHeader
	for _, e := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		claim, header, ok := strings.Cut(e, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want CLAIM=HEADER", e)
		}
		out = append(out, ClaimHeader{Claim: claim, Header: header})
	}
	return out, CheckClaimHeaders(out, "", nil)
}

// CheckClaimHeaders checks the pairs' syntax and, when prefix is set,
// that each header begins with it (so client copies are stripped) and
// differs from the others and from reserved.
//
// Return values: nil, or an error naming the first bad pair.
func CheckClaimHeaders(hs []ClaimHeader, prefix string, reserved []string) error {
	if len(hs) > MaxClaimHeaders {
		return fmt.Errorf("%d claim headers exceed %d", len(hs), MaxClaimHeaders)
	}
	seen := map[string]bool{}
	for _, r := range reserved {
		seen[strings.ToLower(r)] = true
	}
	for _, h := range hs {
		if !validClaimName(h.Claim) {
			return fmt.Errorf("claim %q must be 1 to 128 letters, digits and _ . : / ~ + -", h.Claim)
		}
		if !validHeaderName(h.Header) {
			return fmt.Errorf("header %q of claim %s must be 1 to 64 letters, digits and -", h.Header, h.Claim)
		}
		if prefix != "" && !strings.HasPrefix(strings.ToLower(h.Header), strings.ToLower(prefix)) {
			return fmt.Errorf("header %s must begin with the identity prefix %s, so that client copies are stripped", h.Header, prefix)
		}
		if seen[strings.ToLower(h.Header)] {
			return fmt.Errorf("header %s is used twice", h.Header)
		}
		seen[strings.ToLower(h.Header)] = true
	}
	return nil
}

type server struct {
	Host    string
	Default bool
	Root    bool // a route covers "/": no catch-all 404 location
	Routes  []location
}

type location struct {
	Match    string // nginx location modifier and path
	Service  string
	Upstream string
	MTLS     bool
}

// Render produces nginx.conf.
//
// Return values: the text, or an error naming a setting that cannot be
// written safely into the configuration (the callers validate earlier,
// this is the last line of defence against injection).
func Render(s Settings) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	byHost := map[string]*server{}
	var servers []*server
	def := &server{Default: true}
	byHost[""] = def
	servers = append(servers, def)
	for _, r := range s.Routes {
		sv := byHost[r.Host]
		if sv == nil {
			sv = &server{Host: r.Host}
			byHost[r.Host] = sv
			servers = append(servers, sv)
		}
		locs := []string{"^~ " + r.Prefix}
		if !strings.HasSuffix(r.Prefix, "/") {
			// "/api" must cover "/api" and "/api/x" but not "/apix".
			locs = []string{"= " + r.Prefix, "^~ " + r.Prefix + "/"}
		}
		if r.Prefix == "/" {
			sv.Root = true
		}
		for _, m := range locs {
			sv.Routes = append(sv.Routes, location{Match: m, Service: r.Service, Upstream: r.Upstream, MTLS: r.MTLS})
		}
	}
	slices.SortStableFunc(servers[1:], func(a, b *server) int { return strings.Compare(a.Host, b.Host) })
	hdr := s.MaxTokenBytes + 1024
	if hdr < 8192 {
		hdr = 8192
	}
	var buf bytes.Buffer
	err := tmpl().Execute(&buf, map[string]any{
		"S": s, "Servers": servers, "Health": HealthPath, "HeaderBuffer": fmt.Sprintf("%dk", (hdr+1023)/1024),
		"PID": s.PrivateDir + "/" + PIDFile, "ErrorLog": s.PrivateDir + "/" + ErrorLog,
		"StateFile": s.PrivateDir + "/" + StateFile, "Socket": s.PrivateDir + "/" + AdminSocket,
		"LuaPath": s.PrivateDir + "/" + LuaDir + "/?.lua",
		"CPath":   cpath(s.LuaCPath),
	})
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func cpath(dirs []string) string {
	var b strings.Builder
	for _, d := range dirs {
		b.WriteString(d + "/?.so;")
	}
	return b.String() + ";"
}

// tmpl is parsed on first use, by start and reload only: every other
// action of the agent loads this package too.
var tmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("nginx.conf").Parse(`# Rendered by ocf:ha-framework:openresty-gateway; changes are overwritten.
{{range .S.LoadModules}}load_module {{.}};
{{end -}}
daemon off;
master_process on;
{{if .S.User}}user {{.S.User}};
{{end -}}
worker_processes {{if .S.Workers}}{{.S.Workers}}{{else}}auto{{end}};
pid {{.PID}};
error_log {{.ErrorLog}} {{if .S.LogLevel}}{{.S.LogLevel}}{{else}}notice{{end}};

events {
    worker_connections 4096;
}

http {
    access_log off;
    server_tokens off;
    client_body_temp_path {{.S.TempDir}}/client_body;
    proxy_temp_path {{.S.TempDir}}/proxy;
    fastcgi_temp_path {{.S.TempDir}}/fastcgi;
    uwsgi_temp_path {{.S.TempDir}}/uwsgi;
    scgi_temp_path {{.S.TempDir}}/scgi;
    large_client_header_buffers 4 {{.HeaderBuffer}};
    ignore_invalid_headers on;
    underscores_in_headers off;
    merge_slashes on;

    lua_package_path "{{.LuaPath}};;";
    lua_package_cpath "{{.CPath}}";
    lua_shared_dict gw_state 32m;
    init_by_lua_block {
        require("gateway.init").master({
            state_file = "{{.StateFile}}",
            options = {
                identity_prefix = "{{.S.IdentityPrefix}}",
                subject_header = "{{.S.SubjectHeader}}",
                issuer_header = "{{.S.IssuerHeader}}",
                claim_headers = {
{{- range .S.ClaimHeaders}}
                    { claim = "{{.Claim}}", header = "{{.Header}}" },
{{- end}}
                },
            },
        })
    }

    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:gw_tls:10m;
    ssl_session_tickets off;
{{if .S.RedirectListen}}
    server {
        listen {{.S.RedirectListen}};
        location / {
            return 308 https://$host$request_uri;
        }
    }
{{end}}
{{- range .Servers}}
    server {
        listen {{$.S.Listen}} ssl{{if .Default}} default_server{{end}};
{{- if .Host}}
        server_name {{.Host}};
{{- end}}
        ssl_certificate {{$.S.CertFile}};
        ssl_certificate_key {{$.S.KeyFile}};
{{- if $.S.ClientCAFile}}
        ssl_client_certificate {{$.S.ClientCAFile}};
        ssl_verify_client optional;
        ssl_verify_depth 4;
{{- end}}
{{if .Default}}
        location = {{$.Health}} {
            default_type text/plain;
            return 200 "ok\n";
        }
{{end}}
{{- if not .Root}}
        location / {
            return 404;
        }
{{- end}}
{{- range .Routes}}

        location {{.Match}} {
            access_by_lua_block { require("gateway.access").run("{{.Service}}", {{.MTLS}}, {{$.S.TokenCache}}) }
            proxy_pass {{.Upstream}};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto https;
        }
{{- end}}
    }
{{end}}
    server {
        listen unix:{{.Socket}};
        client_max_body_size 16m;
        client_body_buffer_size 16m;
        location = /state {
            content_by_lua_block { require("gateway.admin").handle() }
        }
        location / {
            return 404;
        }
    }
}
`))
})
