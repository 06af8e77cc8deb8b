// Package acl is a service's access control list as kept in Consul KV at
// acl/<service>: a versioned JSON document of ordered rules, the first
// matching rule decides, and a request no rule matches is denied. The
// gateway's Lua side evaluates it; this package validates it, so that a
// document nginx receives is always one it understands.
package acl

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/strictjson"
	"github.com/ha-framework/ha-framework/internal/charclass"
)

// Document is one service's ACL.
type Document struct {
	// Version is the administrator's own revision number (at least 1),
	// reported in logs and by the monitor.
	Version int `json:"version"`
	// Mode is "enforce" (the default) or "shadow": decisions are logged
	// but denials are not enforced (tokens are still required).
	Mode  string `json:"mode,omitempty"`
	Rules []Rule `json:"rules"`
	// Digest identifies the document's text; set by Parse.
	Digest string `json:"digest,omitempty"`
}

// Rule matches a request when every field it sets matches: the subject
// (sub in Subjects, or one of the token's groups in Groups; neither set
// matches any authenticated subject), all Scopes granted, the method in
// Methods, the normalized path matching one of Paths.
type Rule struct {
	Name     string   `json:"name,omitempty"`
	Action   string   `json:"action"`
	Subjects []string `json:"subjects,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	Methods  []string `json:"methods,omitempty"`
	Paths    []Path   `json:"paths,omitempty"`
}

// Path is Exact or Prefix. A prefix ending in "/" matches every path that
// begins with it; otherwise it matches itself and the paths below it
// ("/api" matches "/api" and "/api/x", not "/apix").
type Path struct {
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}

// Limits of one document.
const (
	MaxBytes  = 64 << 10
	MaxRules  = 256
	MaxValues = 256 // per list
	maxString = 256
)

// The classes of methods and service names, matched without regular
// expressions (see package charclass): routes name services, and are
// checked on every monitor.
var (
	upper       = charclass.Of("A-Z")
	alnum       = charclass.Of("A-Za-z0-9")
	serviceRest = charclass.Of("A-Za-z0-9._-")
)

// ValidService reports whether name can be a service (and so a KV key
// under the ACL prefix).
func ValidService(name string) bool { return charclass.Word(name, alnum, serviceRest, 63) }

// Parse validates a document's text.
//
// Return values: the document with Digest set, or an error whose text
// names the first problem (the rule index and field), short enough for an
// exit reason.
func Parse(data []byte) (*Document, error) {
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("document of %d bytes exceeds %d", len(data), MaxBytes)
	}
	if err := strictjson.CheckObject(data); err != nil {
		return nil, errors.New("not a strict JSON object (syntax, duplicate key, or invalid UTF-8)")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d Document
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("bad document: %v", err)
	}
	if d.Digest != "" {
		return nil, errors.New("digest is computed, not given")
	}
	if d.Version < 1 {
		return nil, errors.New("version must be an integer of at least 1")
	}
	switch d.Mode {
	case "":
		d.Mode = "enforce"
	case "enforce", "shadow":
	default:
		return nil, fmt.Errorf("mode %q must be enforce or shadow", d.Mode)
	}
	if len(d.Rules) > MaxRules {
		return nil, fmt.Errorf("%d rules exceed %d", len(d.Rules), MaxRules)
	}
	for i := range d.Rules {
		if err := d.Rules[i].check(); err != nil {
			return nil, fmt.Errorf("rule %d (%s): %w", i+1, d.Rules[i].Name, err)
		}
	}
	h := sha256.Sum256(data)
	d.Digest = hex.EncodeToString(h[:16])
	return &d, nil
}

func (r *Rule) check() error {
	if r.Action != "allow" && r.Action != "deny" {
		return fmt.Errorf("action %q must be allow or deny", r.Action)
	}
	if err := text("name", r.Name, true); err != nil {
		return err
	}
	for _, l := range []struct {
		field string
		vals  []string
	}{{"subjects", r.Subjects}, {"groups", r.Groups}, {"scopes", r.Scopes}} {
		if err := list(l.field, l.vals); err != nil {
			return err
		}
		for _, v := range l.vals {
			if l.field == "scopes" && strings.ContainsAny(v, " \t") {
				return fmt.Errorf("scope %q contains white space", v)
			}
		}
	}
	if err := list("methods", r.Methods); err != nil {
		return err
	}
	for _, m := range r.Methods {
		if !charclass.Word(m, upper, upper, 20) {
			return fmt.Errorf("method %q must be upper-case letters, like GET", m)
		}
	}
	if len(r.Paths) > MaxValues {
		return fmt.Errorf("more than %d paths", MaxValues)
	}
	for _, p := range r.Paths {
		switch {
		case (p.Exact == "") == (p.Prefix == ""):
			return errors.New("each path sets exactly one of exact and prefix")
		case p.Exact != "":
			if err := checkPath(p.Exact); err != nil {
				return fmt.Errorf("exact %q: %w", p.Exact, err)
			}
		default:
			if err := checkPath(p.Prefix); err != nil {
				return fmt.Errorf("prefix %q: %w", p.Prefix, err)
			}
		}
	}
	return nil
}

func text(field, v string, empty bool) error {
	if v == "" && !empty {
		return fmt.Errorf("%s has an empty value", field)
	}
	if len(v) > maxString {
		return fmt.Errorf("%s value longer than %d bytes", field, maxString)
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%s value has a control character", field)
		}
	}
	return nil
}

func list(field string, vals []string) error {
	if len(vals) > MaxValues {
		return fmt.Errorf("%s has more than %d values", field, MaxValues)
	}
	for _, v := range vals {
		if err := text(field, v, false); err != nil {
			return err
		}
	}
	return nil
}

// checkPath accepts only normalized paths, the form nginx gives the Lua
// side ($uri: decoded, dot segments resolved, slashes merged): a path
// that never occurs would be a rule that silently never matches.
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return errors.New("must begin with /")
	}
	if len(p) > maxString {
		return fmt.Errorf("longer than %d bytes", maxString)
	}
	if strings.Contains(p, "//") || strings.Contains(p, "%") || strings.ContainsAny(p, "?#\\") {
		return errors.New("must be a normalized, decoded path (no //, %, ?, #, \\)")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return errors.New("must not contain . or .. segments")
		}
	}
	for _, c := range p {
		if c <= 0x20 || c == 0x7f {
			return errors.New("has a space or control character")
		}
	}
	return nil
}
