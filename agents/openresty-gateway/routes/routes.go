// Package routes is the gateway's routing table: a public host and path
// prefix lead to a service (whose ACL applies) and its upstream.
package routes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/internal/charclass"
)

// Route is one entry of the table.
type Route struct {
	Host     string `json:"host,omitempty"` // "" matches any host
	Prefix   string `json:"path"`
	Service  string `json:"service"`
	Upstream string `json:"upstream"` // scheme://host:port, normalized by Parse
	MTLS     bool   `json:"mtls,omitempty"`
}

// The classes of host names and paths, matched without regular
// expressions (see package charclass): routes are checked on every
// monitor.
var (
	alnum       = charclass.Of("A-Za-z0-9")
	labelRest   = charclass.Of("A-Za-z0-9-")
	prefixSlash = charclass.Of("/")
	prefixRest  = charclass.Of("A-Za-z0-9._~/-")
)

// dnsName reports whether s is dot-separated labels of a letter or digit
// then up to 62 letters, digits or '-'.
func dnsName(s string) bool {
	for {
		label, more, found := strings.Cut(s, ".")
		if !charclass.Word(label, alnum, labelRest, 63) {
			return false
		}
		if !found {
			return true
		}
		s = more
	}
}

// MaxRoutes bounds the table.
const MaxRoutes = 1000

// Parse reads the parameter form: entries separated by commas or white
// space, each [HOST]/PATH=SERVICE=UPSTREAM[=mtls], e.g.
// "/orders/=orders=127.0.0.1:8081,api.example.com/=web=http://127.0.0.1:8082=mtls".
//
// Return values: the routes, or an error naming the first bad entry.
func Parse(v string) ([]Route, error) {
	var rs []Route
	for _, e := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		f := strings.Split(e, "=")
		if len(f) < 3 || len(f) > 4 || (len(f) == 4 && f[3] != "mtls") {
			return nil, fmt.Errorf("route %q: want [HOST]/PATH=SERVICE=UPSTREAM[=mtls]", e)
		}
		slash := strings.IndexByte(f[0], '/')
		if slash < 0 {
			return nil, fmt.Errorf("route %q: the path must begin with /", e)
		}
		rs = append(rs, Route{Host: f[0][:slash], Prefix: f[0][slash:], Service: f[1], Upstream: f[2], MTLS: len(f) == 4})
	}
	return check(rs)
}

// ParseFile reads the file form: {"routes": [{"host": "", "path": "/orders/",
// "service": "orders", "upstream": "http://127.0.0.1:8081", "mtls": true}]}.
//
// Return values: the routes, or an error naming the first problem.
func ParseFile(data []byte) ([]Route, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f struct {
		Routes []Route `json:"routes"`
	}
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a routes file: %v", err)
	}
	return check(f.Routes)
}

func check(rs []Route) ([]Route, error) {
	if len(rs) == 0 {
		return nil, errors.New("no routes")
	}
	if len(rs) > MaxRoutes {
		return nil, fmt.Errorf("more than %d routes", MaxRoutes)
	}
	seen := map[string]bool{}
	for i := range rs {
		r := &rs[i]
		if r.Host != "" && !dnsName(r.Host) {
			return nil, fmt.Errorf("route %s: host %q is not a DNS name", r.Prefix, r.Host)
		}
		r.Host = strings.ToLower(r.Host)
		if err := checkPrefix(r.Prefix); err != nil {
			return nil, fmt.Errorf("route %s%s: %v", r.Host, r.Prefix, err)
		}
		if !acl.ValidService(r.Service) {
			return nil, fmt.Errorf("route %s%s: service %q must be letters, digits, . _ - (at most 63)", r.Host, r.Prefix, r.Service)
		}
		u, err := Upstream(r.Upstream)
		if err != nil {
			return nil, fmt.Errorf("route %s%s: upstream %v", r.Host, r.Prefix, err)
		}
		r.Upstream = u
		key := r.Host + r.Prefix
		if seen[key] {
			return nil, fmt.Errorf("route %s: appears twice", key)
		}
		seen[key] = true
	}
	return rs, nil
}

func checkPrefix(p string) error {
	if !charclass.Word(p, prefixSlash, prefixRest, -1) {
		return errors.New("path must begin with / and hold only letters, digits and . _ ~ / -")
	}
	if strings.Contains(p, "//") {
		return errors.New("path must not contain //")
	}
	for _, s := range strings.Split(p, "/") {
		if s == "." || s == ".." {
			return errors.New("path must not contain . or .. segments")
		}
	}
	return nil
}

// Upstream normalizes [http://|https://]HOST:PORT (no path) to
// scheme://host:port.
//
// Return values: the normalized URL, or an error.
func Upstream(v string) (string, error) {
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("scheme must be http or https")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", errors.New("must have no path: scheme://host:port")
	}
	host, port, err := net.SplitHostPort(u.Host)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n < 1 || n > 65535 {
		return "", errors.New("needs host:port")
	}
	if net.ParseIP(host) == nil && !dnsName(host) {
		return "", errors.New("host is neither an IP address nor a DNS name")
	}
	return u.Scheme + "://" + net.JoinHostPort(host, port), nil
}
