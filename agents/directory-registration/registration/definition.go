package registration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/internal/charclass"
)

// The pure half of the agent: this file parses and validates definitions
// (object.go reads the JSON key by key), registration.go turns them into
// what is registered and compares that with what Consul holds. Nothing
// there does I/O, so it is table-tested on the examples in testdata/ and
// fuzzed.

// Meta keys the agent owns in every registration.
const (
	// metaResource names the Pacemaker resource, so that a probe finds
	// registrations of this resource whatever their service ID.
	metaResource = "ha_resource"
	// metaDefinition is a digest of the registration as the agent meant
	// it, so that a deep monitor sees a changed definition at a glance.
	metaDefinition = "ha_definition"
)

// maxDefinitionSize bounds what ParseDefinition reads. Consul's own limit
// for a request body is larger, but a service definition this big is a
// mistake (a wrong file), not a service.
const maxDefinitionSize = 1 << 20

// minDeregisterAfter is Consul's floor for deregister_critical_service_after:
// its reaper ignores shorter values and uses a minute.
const minDeregisterAfter = time.Minute

// fieldError says which field of a definition is wrong and why.
type fieldError struct{ field, problem string }

func (e *fieldError) Error() string {
	if e.field == "" {
		return e.problem
	}
	return e.field + ": " + e.problem
}

// ParseDefinition reads one service definition in Consul's JSON format:
// either {"service": {...}} as in Consul's configuration files and
// `consul services register`, or the bare service object as in the
// /v1/agent/service/register API. Keys match in snake_case ("check_id") or
// CamelCase ("CheckID"). The checks may be of type script (args), http,
// tcp, grpc or ttl; any other type, any unknown key and any value Consul
// would reject or silently change is an error naming the field. Durations
// come back normalised ("1m0s"), every check in Checks.
//
// The result is the definition as written: the agent's own identity
// (default service and check IDs, meta) is added later.
func ParseDefinition(data []byte) (*api.AgentServiceRegistration, error) {
	if len(data) > maxDefinitionSize {
		return nil, &fieldError{"", fmt.Sprintf("larger than %d bytes; is it the right file?", maxDefinitionSize)}
	}
	raw, err := decodeOne(data)
	if err != nil {
		return nil, err
	}
	top, err := parseObject("", raw, nil)
	if err != nil {
		return nil, err
	}
	if _, ok := top.peek("services"); ok {
		return nil, &fieldError{top.field("services"), "one service per resource: put a single \"service\" in the file and give each other service its own resource"}
	}
	svc := top
	if m, ok := top.peek("service"); ok {
		if len(top.members) > 1 {
			others := top.unknown()
			others = slices.DeleteFunc(others, func(k string) bool { return k == m.key })
			return nil, &fieldError{others[0], "unknown field beside \"service\""}
		}
		if svc, err = parseObject(m.key, m.raw, nil); err != nil {
			return nil, err
		}
	}
	return parseService(svc)
}

// decodeOne decodes exactly one JSON value, refusing trailing data (two
// concatenated objects are a broken file, not a definition).
func decodeOne(data []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &fieldError{"", "empty; expected a JSON object such as {\"service\": {\"name\": ...}}"}
		}
		return nil, &fieldError{"", "not valid JSON: " + jsonProblem(data, err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &fieldError{"", "not valid JSON: more data after the first value"}
	}
	if fe := duplicateKey(raw); fe != nil {
		return nil, fe
	}
	return raw, nil
}

// duplicateKey finds the first key given twice in one object, anywhere
// in a JSON document: encoding/json keeps the last silently, so an
// administrator would read one value and Consul get another. (Keys that
// differ only in case or underscores are caught where the definition's
// own objects are read, since Consul reads them as one.) It reads the
// document once, as a stream of tokens.
func duplicateKey(data []byte) *fieldError {
	type frame struct {
		object  bool
		keys    map[string]bool
		wantKey bool   // an object's next token is a key or its end
		path    string // the container's own path
		key     string // an object's current member, as a path
		n       int    // an array's next index
	}
	var stack []*frame
	valueDone := func() {
		if len(stack) > 0 {
			if top := stack[len(stack)-1]; top.object {
				top.wantKey = true
			} else {
				top.n++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end, or a syntax error decodeOne reports
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				valueDone()
				continue
			}
			k, _ := tok.(string)
			path := k
			if top.path != "" {
				path = top.path + "." + k
			}
			if top.keys[k] {
				return &fieldError{path, "given twice"}
			}
			top.keys[k], top.wantKey, top.key = true, false, path
			continue
		}
		var path string
		switch {
		case top == nil:
		case top.object:
			path = top.key
		default:
			path = fmt.Sprintf("%s[%d]", top.path, top.n)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, wantKey: true, path: path})
		case json.Delim('['):
			stack = append(stack, &frame{path: path})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// jsonProblem describes a syntax error with its line, which is what an
// administrator needs to find it in the file.
func jsonProblem(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Sprintf("%v (line %d)", se, line)
	}
	return err.Error()
}

// unsupported names keys Consul knows but this agent refuses, with why.
type unsupported struct{ key, why string }

var (
	serviceRefused = []unsupported{
		{"token", "a token in the definition would be a secret outside token_file; remove it and set token_file"},
		{"kind", "only plain services are supported (no Connect proxies or gateways)"},
		{"proxy", "Connect proxies are not supported by this agent"},
		{"connect", "Connect is not supported by this agent"},
		{"ports", "named ports are not supported by this agent; use port"},
		{"socket_path", "unix socket services are not supported by this agent; use address and port"},
		{"namespace", "namespaces (Consul Enterprise) are not supported by this agent"},
		{"partition", "admin partitions (Consul Enterprise) are not supported by this agent"},
		{"locality", "locality is not supported by this agent"},
	}
	checkRefused = []unsupported{
		{"script", "removed in Consul 1.1; use \"args\": [\"/path/to/check\", \"arg\"]"},
		{"docker_container_id", "docker checks are not supported; use args, http, tcp, grpc or ttl"},
		{"shell", "docker checks are not supported; use args, http, tcp, grpc or ttl"},
		{"alias_service", "alias checks are not supported; use args, http, tcp, grpc or ttl"},
		{"alias_node", "alias checks are not supported; use args, http, tcp, grpc or ttl"},
		{"h2ping", "h2ping checks are not supported; use args, http, tcp, grpc or ttl"},
		{"h2ping_use_tls", "h2ping checks are not supported; use args, http, tcp, grpc or ttl"},
		{"udp", "udp checks are not supported; use args, http, tcp, grpc or ttl"},
		{"os_service", "os_service checks are not supported; use args, http, tcp, grpc or ttl"},
		{"disable_redirects", "not supported by this agent; drop it"},
		{"output_max_size", "not supported by this agent; drop it"},
		{"service_id", "a check inside a service definition belongs to that service; drop it"},
		{"token", "a token in the definition would be a secret outside token_file; remove it and set token_file"},
	}
	// checkAliases are the other spellings Consul accepts for a check key.
	checkAliases = map[string]string{"checkid": "id", "scriptargs": "args"}
)

func parseService(o *object) (*api.AgentServiceRegistration, error) {
	for _, u := range serviceRefused {
		if _, ok := o.peek(u.key); ok {
			return nil, &fieldError{o.field(u.key), u.why}
		}
	}
	reg := &api.AgentServiceRegistration{}
	port := int64(-1)
	var weights, check, checks, tagged member
	var hasWeights, hasCheck, hasChecks, hasTagged bool
	err := errors.Join(
		o.str("id", &reg.ID),
		o.str("name", &reg.Name),
		o.strs("tags", &reg.Tags),
		o.str("address", &reg.Address),
		o.integer("port", &port),
		o.strMap("meta", &reg.Meta),
		o.boolean("enable_tag_override", &reg.EnableTagOverride),
	)
	if err != nil {
		return nil, firstOf(err)
	}
	weights, hasWeights = o.take("weights")
	check, hasCheck = o.take("check")
	checks, hasChecks = o.take("checks")
	tagged, hasTagged = o.take("tagged_addresses")
	if err := o.rest(); err != nil {
		return nil, err
	}

	switch {
	case reg.Name == "":
		return nil, &fieldError{o.field("name"), "required: the service's name in Consul"}
	case validName(reg.Name) != nil:
		return nil, &fieldError{o.field("name"), validName(reg.Name).Error()}
	case reg.ID != "" && validID(reg.ID) != nil:
		return nil, &fieldError{o.field("id"), validID(reg.ID).Error()}
	case reg.Address != "" && validHost(reg.Address) != nil:
		return nil, &fieldError{o.field("address"), validHost(reg.Address).Error()}
	case port != -1 && (port < 1 || port > 65535):
		return nil, &fieldError{o.field("port"), "must be from 1 to 65535"}
	}
	if port > 0 {
		reg.Port = int(port)
	}
	for i, t := range reg.Tags {
		if strings.TrimSpace(t) == "" {
			return nil, &fieldError{fmt.Sprintf("%s[%d]", o.field("tags"), i), "empty tag"}
		}
		if err := plainText(t); err != nil {
			return nil, &fieldError{fmt.Sprintf("%s[%d]", o.field("tags"), i), err.Error()}
		}
	}
	if err := validMeta(reg.Meta); err != nil {
		return nil, &fieldError{o.field("meta"), err.Error()}
	}
	if hasWeights {
		w, err := parseWeights(o.child(weights), weights.raw)
		if err != nil {
			return nil, err
		}
		reg.Weights = w
	}
	if hasTagged {
		t, err := parseTagged(o.child(tagged), tagged.raw)
		if err != nil {
			return nil, err
		}
		reg.TaggedAddresses = t
	}
	if hasCheck {
		co, err := parseObject(o.child(check), check.raw, checkAliases)
		if err != nil {
			return nil, err
		}
		c, err := parseCheck(co)
		if err != nil {
			return nil, err
		}
		reg.Checks = append(reg.Checks, c)
	}
	if hasChecks {
		var list []json.RawMessage
		if err := json.Unmarshal(checks.raw, &list); err != nil {
			return nil, &fieldError{o.child(checks), "must be a list of checks"}
		}
		for i, raw := range list {
			co, err := parseObject(fmt.Sprintf("%s[%d]", o.child(checks), i), raw, checkAliases)
			if err != nil {
				return nil, err
			}
			c, err := parseCheck(co)
			if err != nil {
				return nil, err
			}
			reg.Checks = append(reg.Checks, c)
		}
	}
	seen := map[string]bool{}
	for _, c := range reg.Checks {
		if c.CheckID == "" {
			continue
		}
		if seen[c.CheckID] {
			return nil, &fieldError{o.field("checks"), fmt.Sprintf("check id %q is used twice", c.CheckID)}
		}
		seen[c.CheckID] = true
	}
	return reg, nil
}

func parseWeights(path string, raw json.RawMessage) (*api.AgentWeights, error) {
	o, err := parseObject(path, raw, nil)
	if err != nil {
		return nil, err
	}
	passing, warning := int64(1), int64(1)
	if err := errors.Join(o.integer("passing", &passing), o.integer("warning", &warning)); err != nil {
		return nil, firstOf(err)
	}
	if err := o.rest(); err != nil {
		return nil, err
	}
	if passing < 1 || passing > 65535 {
		return nil, &fieldError{o.field("passing"), "must be from 1 to 65535"}
	}
	if warning < 0 || warning > 65535 {
		return nil, &fieldError{o.field("warning"), "must be from 0 to 65535"}
	}
	return &api.AgentWeights{Passing: int(passing), Warning: int(warning)}, nil
}

func parseTagged(path string, raw json.RawMessage) (map[string]api.ServiceAddress, error) {
	o, err := parseObject(path, raw, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]api.ServiceAddress{}
	for _, norm := range o.order {
		m := o.members[norm]
		name := o.field(m.key)
		if strings.TrimSpace(m.key) == "" {
			return nil, &fieldError{name, "empty tagged address name"}
		}
		ao, err := parseObject(name, m.raw, nil)
		if err != nil {
			return nil, err
		}
		var a api.ServiceAddress
		const unset = math.MinInt64
		port := int64(unset)
		if err := errors.Join(ao.str("address", &a.Address), ao.integer("port", &port)); err != nil {
			return nil, firstOf(err)
		}
		if err := ao.rest(); err != nil {
			return nil, err
		}
		if a.Address == "" {
			return nil, &fieldError{ao.field("address"), "required"}
		}
		if err := validHost(a.Address); err != nil {
			return nil, &fieldError{ao.field("address"), err.Error()}
		}
		// 0 means no port, as in Consul's API form (which writes
		// "Port":0 for an address without one).
		if port != unset && (port < 0 || port > 65535) {
			return nil, &fieldError{ao.field("port"), "must be from 1 to 65535, or 0 for none"}
		}
		if port > 0 {
			a.Port = int(port)
		}
		out[m.key] = a
	}
	return out, nil
}

// checkTypes are the supported check types, keyed by the field that
// selects each, in the order messages list them.
var checkTypes = []string{"args", "http", "tcp", "grpc", "ttl"}

func parseCheck(o *object) (*api.AgentServiceCheck, error) {
	for _, u := range checkRefused {
		if _, ok := o.peek(u.key); ok {
			return nil, &fieldError{o.field(u.key), u.why}
		}
	}
	c := &api.AgentServiceCheck{}
	var interval, timeout, ttl, dcsa string
	success, warnAfter, critAfter := int64(0), int64(0), int64(0)
	err := errors.Join(
		o.str("id", &c.CheckID),
		o.str("name", &c.Name),
		o.str("notes", &c.Notes),
		o.str("status", &c.Status),
		o.strs("args", &c.Args),
		o.str("http", &c.HTTP),
		o.str("method", &c.Method),
		o.headers("header", &c.Header),
		o.str("body", &c.Body),
		o.boolean("tls_skip_verify", &c.TLSSkipVerify),
		o.str("tls_server_name", &c.TLSServerName),
		o.str("tcp", &c.TCP),
		o.boolean("tcp_use_tls", &c.TCPUseTLS),
		o.str("grpc", &c.GRPC),
		o.boolean("grpc_use_tls", &c.GRPCUseTLS),
		o.str("ttl", &ttl),
		o.str("interval", &interval),
		o.str("timeout", &timeout),
		o.str("deregister_critical_service_after", &dcsa),
		o.integer("success_before_passing", &success),
		o.integer("failures_before_warning", &warnAfter),
		o.integer("failures_before_critical", &critAfter),
	)
	if err != nil {
		return nil, firstOf(err)
	}
	if err := o.rest(); err != nil {
		return nil, err
	}

	var types []string
	for _, t := range checkTypes {
		if o.has(t) {
			types = append(types, t)
		}
	}
	switch len(types) {
	case 0:
		return nil, &fieldError{o.path, "no check type: set one of args (script), http, tcp, grpc or ttl"}
	case 1:
	default:
		return nil, &fieldError{o.path, fmt.Sprintf("sets both %s and %s; a check has one type, so make two checks", o.field(types[0]), o.field(types[1]))}
	}
	typ := types[0]

	if c.CheckID != "" {
		if err := validID(c.CheckID); err != nil {
			return nil, &fieldError{o.field("id"), err.Error()}
		}
	}
	switch c.Status {
	case "", api.HealthPassing, api.HealthWarning, api.HealthCritical:
	default:
		return nil, &fieldError{o.field("status"), fmt.Sprintf("%q is not passing, warning or critical", c.Status)}
	}

	switch typ {
	case "args":
		if len(c.Args) == 0 || strings.TrimSpace(c.Args[0]) == "" {
			return nil, &fieldError{o.field("args"), "must name a program, as in [\"/usr/local/bin/check\", \"arg\"]"}
		}
	case "http":
		if err := validHTTPURL(c.HTTP); err != nil {
			return nil, &fieldError{o.field("http"), err.Error()}
		}
	case "tcp":
		if err := validHostPort(c.TCP); err != nil {
			return nil, &fieldError{o.field("tcp"), err.Error()}
		}
	case "grpc":
		if err := validGRPC(c.GRPC); err != nil {
			return nil, &fieldError{o.field("grpc"), err.Error()}
		}
	case "ttl":
		d, err := parseDuration(ttl)
		if err != nil || d <= 0 {
			return nil, &fieldError{o.field("ttl"), "must be a positive duration such as \"30s\""}
		}
		c.TTL = d.String()
	}

	// Fields that only mean something for some types are refused
	// elsewhere: Consul would ignore them, and the administrator would
	// believe they work.
	only := func(key string, set bool, allowed ...string) error {
		if set && !slices.Contains(allowed, typ) {
			names := make([]string, len(allowed))
			for i, a := range allowed {
				names[i] = typeName(a)
			}
			list := names[0]
			if n := len(names); n > 1 {
				list = strings.Join(names[:n-1], ", ") + " and " + names[n-1]
			}
			return &fieldError{o.field(key), fmt.Sprintf("applies to %s checks only, not to %s checks", list, typeName(typ))}
		}
		return nil
	}
	tlsTypes := []string{"http", "grpc"}
	if c.TCPUseTLS {
		tlsTypes = append(tlsTypes, "tcp")
	}
	if err := errors.Join(
		only("method", c.Method != "", "http"),
		only("header", c.Header != nil, "http"),
		only("body", c.Body != "", "http"),
		only("tcp_use_tls", c.TCPUseTLS, "tcp"),
		only("grpc_use_tls", c.GRPCUseTLS, "grpc"),
		only("tls_skip_verify", c.TLSSkipVerify, tlsTypes...),
		only("tls_server_name", c.TLSServerName != "", tlsTypes...),
		only("interval", interval != "", "args", "http", "tcp", "grpc"),
		only("timeout", timeout != "", "args", "http", "tcp", "grpc"),
	); err != nil {
		return nil, firstOf(err)
	}
	if c.Method != "" && !charclass.Word(c.Method, upper, upper, -1) {
		return nil, &fieldError{o.field("method"), fmt.Sprintf("%q is not an HTTP method such as GET or HEAD", c.Method)}
	}
	for name := range c.Header {
		if name == "" || strings.ContainsAny(name, " :\r\n\t") {
			return nil, &fieldError{o.field("header"), fmt.Sprintf("%q is not a header name", name)}
		}
	}

	if typ != "ttl" {
		if interval == "" {
			return nil, &fieldError{o.field("interval"), fmt.Sprintf("required for %s checks: how often Consul runs them, such as \"10s\"", typeName(typ))}
		}
		d, err := parseDuration(interval)
		if err != nil || d < time.Second {
			return nil, &fieldError{o.field("interval"), "must be a duration of at least 1s, such as \"10s\""}
		}
		c.Interval = d.String()
	}
	if timeout != "" {
		d, err := parseDuration(timeout)
		if err != nil || d <= 0 {
			return nil, &fieldError{o.field("timeout"), "must be a positive duration such as \"5s\""}
		}
		c.Timeout = d.String()
	}
	if dcsa != "" {
		d, err := parseDuration(dcsa)
		if err != nil || d < minDeregisterAfter {
			return nil, &fieldError{o.field("deregister_critical_service_after"), "must be a duration of at least 1m (Consul's minimum), such as \"10m\""}
		}
		c.DeregisterCriticalServiceAfter = d.String()
	}
	for _, n := range []struct {
		key string
		v   int64
		dst *int
	}{{"success_before_passing", success, &c.SuccessBeforePassing}, {"failures_before_warning", warnAfter, &c.FailuresBeforeWarning}, {"failures_before_critical", critAfter, &c.FailuresBeforeCritical}} {
		if n.v < 0 || n.v > 1000 {
			return nil, &fieldError{o.field(n.key), "must be from 0 to 1000"}
		}
		*n.dst = int(n.v)
	}
	return c, nil
}

// typeName is how messages name a check type.
func typeName(typ string) string {
	if typ == "args" {
		return "script (args)"
	}
	return typ
}

// parseDuration reads a Go duration as Consul does; a bare "0" is the
// only unitless value Go accepts.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		return 0, errors.New("not a duration")
	}
	return d, nil
}

// The classes of names, IDs, meta keys, host names and methods, matched
// without regular expressions (see package charclass): definitions are
// checked on every monitor, and an expression compiled at package
// initialization costs every run of each binary linking this package.
var (
	alnum    = charclass.Of("A-Za-z0-9")
	upper    = charclass.Of("A-Z")
	nameRest = charclass.Of("A-Za-z0-9._-")
	idRest   = charclass.Of("A-Za-z0-9._:-")
	metaKey  = charclass.Of("A-Za-z0-9_-")
	hostRest = charclass.Of("A-Za-z0-9.-")
)

// hostName reports whether s is letters, digits, '.' and '-', beginning
// and ending with a letter or digit.
func hostName(s string) bool { return charclass.Word(s, alnum, hostRest, -1) && alnum.Has(s[len(s)-1]) }

// validName accepts what Consul's DNS interface can serve; Consul itself
// takes more, but only warns.
func validName(s string) error {
	if len(s) > 128 || !charclass.Word(s, alnum, nameRest, -1) {
		return fmt.Errorf("%q must be up to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", s)
	}
	return nil
}

// validID keeps IDs safe in the URL paths of Consul's API, which the
// client does not escape.
func validID(s string) error {
	if len(s) > 256 || !charclass.Word(s, alnum, idRest, -1) {
		return fmt.Errorf("%q must be up to 256 letters, digits, '.', '_', ':' or '-', starting with a letter or digit", s)
	}
	return nil
}

func validHost(s string) error {
	if net.ParseIP(s) != nil || (len(s) <= 253 && hostName(s)) {
		return nil
	}
	return fmt.Errorf("%q is not an IP address or host name", s)
}

func validHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port, such as 127.0.0.1:8080", s)
	}
	if err := validHost(host); err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be from 1 to 65535", s)
	}
	return nil
}

func validHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(s, " \t\r\n") {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	return nil
}

// validGRPC accepts host:port with an optional /service, the form of
// Consul's grpc check.
func validGRPC(s string) error {
	hp, service, _ := strings.Cut(s, "/")
	if err := validHostPort(hp); err != nil {
		return fmt.Errorf("%q is not host:port or host:port/service", s)
	}
	if strings.ContainsAny(service, " /\t\r\n") {
		return fmt.Errorf("%q: the gRPC service name must be one word", s)
	}
	return nil
}

// validMeta applies Consul's limits on service meta, and keeps the keys
// the agent owns for itself.
func validMeta(m map[string]string) error {
	if len(m) > 62 {
		return errors.New("more than 62 entries (Consul allows 64, the agent adds 2)")
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch {
		case k == metaResource || k == metaDefinition:
			return fmt.Errorf("key %s is set by the agent; remove it", k)
		case len(k) > 128 || k == "" || !metaKey.All(k):
			return fmt.Errorf("key %q must be up to 128 letters, digits, '_' or '-'", k)
		case strings.HasPrefix(k, "consul-"):
			return fmt.Errorf("key %q: the prefix consul- is reserved by Consul", k)
		case len(m[k]) > 512:
			return fmt.Errorf("value of %s is longer than 512 characters", k)
		case plainText(m[k]) != nil:
			return fmt.Errorf("value of %s %v", k, plainText(m[k]))
		}
	}
	return nil
}

// plainText refuses what would change the meaning of a tag or a meta
// value for whoever reads the catalog (a configuration renderer, a log, a
// terminal): control characters, white space other than plain spaces,
// invisible marks and invalid UTF-8.
func plainText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for i, r := range s {
		if unicode.IsControl(r) || (unicode.IsSpace(r) && r != ' ') || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("must not contain %U (byte %d)", r, i)
		}
	}
	return nil
}
