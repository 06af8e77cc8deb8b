// Package state is what the gateway enforces: the JWT policy with its
// keys and the ACL of each service, as one versioned JSON document. The
// companion builds it, persists the last good one in the state directory
// (the master loads it at start, so a restart during a Consul outage
// enforces it), and pushes it into nginx's shared memory through a unix
// socket inside the root-only state directory.
package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// State is the document nginx enforces.
type State struct {
	// Version is a digest of everything below: nginx recompiles when it
	// changes.
	Version string `json:"version"`
	// KeysVersion is a digest of Policy: verified tokens cached by a
	// worker stay valid only while it is unchanged.
	KeysVersion string `json:"keys_version"`
	// Policy is the policy file's with the keys from Consul KV added.
	Policy *policy.Compiled         `json:"policy"`
	ACLs   map[string]*acl.Document `json:"acls"`
	// KVKeys are the keys taken from Consul KV, by KV path: the last good
	// ones, which a companion restarted during an outage starts from.
	KVKeys map[string]policy.StoredKey `json:"kv_keys,omitempty"`
}

// New assembles a state from the policy file's policy and the ACLs, and
// computes its versions.
//
// Return values: the state; the error of JSON encoding, which cannot
// happen for these types.
func New(p *policy.Compiled, acls map[string]*acl.Document) (*State, error) {
	return NewWithKVKeys(p, nil, acls)
}

// NewWithKVKeys is New with the keys from Consul KV added to the policy.
//
// Return values: as New.
func NewWithKVKeys(p *policy.Compiled, kv map[string]policy.StoredKey, acls map[string]*acl.Document) (*State, error) {
	if acls == nil {
		acls = map[string]*acl.Document{}
	}
	if len(kv) > 0 {
		p = p.WithKVKeys(kv)
	} else {
		kv = nil
	}
	s := &State{Policy: p, ACLs: acls, KVKeys: kv}
	pj, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	s.KeysVersion = digest(pj)
	all, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	s.Version = digest(all)
	return s, nil
}

func digest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// Write persists s at path (mode 0600: it holds HMAC secrets).
//
// Return values: nil once written durably; the write error otherwise.
func Write(path string, s *State) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return process.WriteFileAtomic(path, data, 0o600)
}

// ErrNone is returned by Read when no state was ever persisted.
var ErrNone = errors.New("no persisted state")

// Read loads a persisted state.
//
// Return values: the state; ErrNone when the file does not exist; another
// error when it cannot be read or decoded.
func Read(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNone
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("persisted state %s: %w", path, err)
	}
	return &s, nil
}

// Versions is what nginx reports it enforces.
type Versions struct {
	Version     string            `json:"version"`
	KeysVersion string            `json:"keys_version"`
	ACLs        map[string]string `json:"acls"` // service → document digest
	// Keys maps each issuer to its public keys' versions by kid.
	Keys map[string]map[string]string `json:"keys"`
	// KeyParses counts the public keys the answering worker has parsed
	// since it started: once per key version, never per request.
	KeyParses int `json:"key_parses"`
}

// KeyVersions is what Versions.Keys should be for policy p.
//
// Return values: issuer → kid → version, for the public keys of p (an
// empty map for a nil policy).
func KeyVersions(p *policy.Compiled) map[string]map[string]string {
	out := map[string]map[string]string{}
	if p == nil {
		return out
	}
	for _, is := range p.Issuers {
		m := map[string]string{}
		for _, k := range is.Keys {
			if k.Version != "" {
				m[k.KID] = k.Version
			}
		}
		out[is.Issuer] = m
	}
	return out
}

// Client talks to nginx's state endpoint on a unix socket.
type Client struct {
	Socket  string
	Timeout time.Duration // per request; default 5s
}

func (c Client) http() *http.Client {
	t := c.Timeout
	if t == 0 {
		t = 5 * time.Second
	}
	return &http.Client{Timeout: t, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", c.Socket)
		},
		DisableKeepAlives: true,
	}}
}

// Push sends s to nginx, which compiles it (parses every key) before it
// replaces the state in force.
//
// Return values: nil when nginx took it; an error carrying nginx's reason
// when it refused it (the old state stays), or the transport error.
func (c Client) Push(ctx context.Context, s *State) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://gateway/state", bytes.NewReader(data))
	if err != nil {
		return err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("nginx refused the state (HTTP %d): %s", resp.StatusCode, e.Error)
	}
	return nil
}

// Get asks nginx which versions it enforces.
//
// Return values: the versions (Version empty when nginx holds no state),
// or the transport or decoding error.
func (c Client) Get(ctx context.Context) (*Versions, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://gateway/state", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("nginx's state endpoint answered HTTP %d", resp.StatusCode)
	}
	var v Versions
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v); err != nil {
		return nil, err
	}
	return &v, nil
}
