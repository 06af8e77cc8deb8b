// Package companion keeps nginx's shared state equal to the configuration
// and Consul KV, without reloading nginx. It runs beside nginx (the agent
// binary started with the hidden argument "watch"): it follows the ACL
// prefix with one blocking query (and, when an issuer takes keys from
// Consul KV, the keys prefix with a second one), validates every
// document, loads the JWT policy and its key files, persists the result
// as the last good state and pushes it through nginx's root-only state
// socket.
//
// Consul being unreachable, or refusing the token, changes nothing in
// force: the last good ACLs and keys stay, and the status file says why,
// for the monitor to report degraded. Nor does a document Consul hides
// from the token (a token without key:read gets an answer with the
// document filtered out, not a refusal): hidden is not deleted. A
// document that fails validation is refused and the last good version at
// its key stays; a deleted document removes the ACL (deny) or the key
// (its tokens are refused).
package companion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/state"
	"github.com/ha-framework/ha-framework/internal/consulapi"
	"github.com/ha-framework/ha-framework/ocf/daemon"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// Config is what the agent hands the companion, in a file of mode 0600.
// It names the token file, never holds the token.
type Config struct {
	PolicyFile    string `json:"policy_file"`
	ConsulAddress string `json:"consul_address"`
	TokenFile     string `json:"token_file,omitempty"`
	Datacenter    string `json:"datacenter,omitempty"`
	KVPrefix      string `json:"kv_prefix"` // e.g. "acl/"
	// KeysPrefix is where issuers with kv_keys keep their keys, e.g.
	// "jwt/" for jwt/<kv_keys>/keys/<kid>.
	KeysPrefix string        `json:"keys_prefix,omitempty"`
	Services   []string      `json:"services"` // the routed services; other documents are ignored
	StateFile  string        `json:"state_file"`
	StatusFile string        `json:"status_file"`
	Socket     string        `json:"socket"`
	Wait       time.Duration `json:"wait"` // the blocking query's wait
	Tick       time.Duration `json:"tick"` // key files re-read and nginx re-checked this often
}

// WriteConfig stores c at path, atomically, mode 0600.
func WriteConfig(path string, c *Config) error { return daemon.WriteConfig(path, c) }

// LoadConfig reads a configuration written by WriteConfig.
func LoadConfig(path string) (*Config, error) {
	var c Config
	if err := daemon.ReadConfig(path, &c); err != nil {
		return nil, fmt.Errorf("companion: %w", err)
	}
	if c.Wait <= 0 {
		c.Wait = 30 * time.Second
	}
	if c.Tick <= 0 {
		c.Tick = 2 * time.Second
	}
	return &c, nil
}

// Status is what the companion reports, for the monitor.
type Status struct {
	PID      int       `json:"pid"`
	LastSync time.Time `json:"last_sync"` // last answer from Consul
	// ConsulIndex is the KV index of the last answer.
	ConsulIndex uint64 `json:"consul_index"`
	ConsulError string `json:"consul_error,omitempty"`
	// ConsulRefused says Consul refused ConsulError's query with HTTP
	// 403: the token is unknown, expired or lacks the rights; not an
	// outage.
	ConsulRefused bool `json:"consul_refused,omitempty"`
	// Hidden lists the KV keys (routed services' ACL documents, keys
	// in force, or a whole prefix) that Consul's last answers left out
	// while filtering them by the token's ACLs: the token lacks
	// key:read there, so what was in force there is kept, not taken
	// for deleted.
	Hidden      []string `json:"hidden,omitempty"`
	PolicyError string   `json:"policy_error,omitempty"`
	PushError   string   `json:"push_error,omitempty"`
	// Rejected maps a service to why its document in Consul was refused.
	Rejected map[string]string `json:"rejected,omitempty"`
	// Pushed is the state version nginx last accepted.
	Pushed string `json:"pushed,omitempty"`
	// ACLs maps each service to the digest (and version) in force.
	ACLs map[string]string `json:"acls"`
	// Keys maps the KV path of each key from Consul in force to its
	// version.
	Keys map[string]string `json:"keys,omitempty"`
	// RejectedKeys maps a KV path to why its key document was refused.
	RejectedKeys map[string]string `json:"rejected_keys,omitempty"`
}

// ErrNoStatus is returned by ReadStatus before the companion wrote one.
var ErrNoStatus = errors.New("the companion has written no status yet")

// ReadStatus reads the status file.
//
// Return values: the status; ErrNoStatus when there is none; another
// error when it cannot be read or decoded.
func ReadStatus(path string) (*Status, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoStatus
	}
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// kvAnswer is one answer of a blocking query.
type kvAnswer struct {
	prefix string
	pairs  api.KVPairs
	index  uint64
	err    error
	// filtered says Consul left out keys the token may not read.
	filtered bool
}

type companion struct {
	cfg    *Config
	log    *slog.Logger
	nginx  state.Client
	client *api.Client
	policy *policy.Compiled
	acls   map[string]*acl.Document
	// kvKeys are the keys from Consul in force, by KV path; keyPairs the
	// last answer for the keys prefix (nil before the first).
	kvKeys   map[string]policy.StoredKey
	keyPairs []policy.KVPair
	// answers receives both queries' answers; stopKeys ends the keys
	// query (nil while it does not run).
	answers  chan kvAnswer
	stopKeys context.CancelFunc
	// consulErr holds each query's last error; refused those of them
	// that were a 403.
	consulErr map[string]string
	refused   map[string]bool
	// hidden holds, per prefix, what its last answer hid (Status.Hidden).
	hidden map[string][]string
	status Status
	// lastStatus is the status last written: the file is rewritten
	// only when it changes.
	lastStatus []byte
}

// Run follows Consul and pushes until ctx ends.
//
// Return values: nil when ctx ended; an error only when the companion
// cannot run at all (the token file is unreadable, the Consul address is
// invalid).
func Run(ctx context.Context, c *Config, log *slog.Logger) error {
	token, err := consulapi.ReadToken(c.TokenFile)
	if err != nil {
		return err
	}
	client, err := consulapi.NewClient(ctx, consulapi.Options{Address: c.ConsulAddress, Token: token})
	if err != nil {
		return err
	}
	w := &companion{cfg: c, log: log, nginx: state.Client{Socket: c.Socket}, client: client, acls: map[string]*acl.Document{},
		kvKeys: map[string]policy.StoredKey{}, answers: make(chan kvAnswer), consulErr: map[string]string{},
		refused: map[string]bool{}, hidden: map[string][]string{},
		status: Status{PID: os.Getpid(), ACLs: map[string]string{}, Rejected: map[string]string{}}}
	// The last good state first: a restart during a Consul outage
	// enforces what was in force before.
	if last, err := state.Read(c.StateFile); err == nil {
		for svc, d := range last.ACLs {
			if slices.Contains(c.Services, svc) {
				w.acls[svc] = d
			}
		}
		maps.Copy(w.kvKeys, last.KVKeys)
		log.Info("loaded the last good state", "version", last.Version, "acls", len(w.acls), "kv_keys", len(w.kvKeys))
	} else if !errors.Is(err, state.ErrNone) {
		log.Warn("the persisted state cannot be read; starting from none (deny)", "err", err)
	}
	w.loadPolicy(ctx)
	w.sync(ctx)

	go w.follow(ctx, client, c.KVPrefix, w.answers)
	defer func() {
		if w.stopKeys != nil {
			w.stopKeys()
		}
	}()
	t := time.NewTicker(c.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-w.answers:
			if a.prefix == c.KVPrefix {
				w.apply(a)
			} else if w.stopKeys != nil {
				w.applyKeys(a)
			}
		case <-t.C:
			w.loadPolicy(ctx)
		}
		w.sync(ctx)
	}
}

// follow runs the blocking query on the prefix and sends every answer.
func (w *companion) follow(ctx context.Context, client *api.Client, prefix string, out chan<- kvAnswer) {
	var index uint64
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		// Each blocking query ends by its own deadline: Consul answers
		// within Wait plus its jitter (Wait/16), and a query that hangs
		// past that is a lost connection.
		qctx, cancel := context.WithTimeout(ctx, w.cfg.Wait+w.cfg.Wait/16+10*time.Second)
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: w.cfg.Wait, Datacenter: w.cfg.Datacenter, AllowStale: true}).WithContext(qctx)
		pairs, meta, err := client.KV().List(prefix, q)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			select {
			case out <- kvAnswer{prefix: prefix, err: err}:
			case <-ctx.Done():
				return
			}
			index = 0
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 500 * time.Millisecond
		select {
		case out <- kvAnswer{prefix: prefix, pairs: pairs, index: meta.LastIndex, filtered: meta.ResultsFilteredByACLs}:
		case <-ctx.Done():
			return
		}
		// An index that goes backwards (a snapshot restore, a new
		// cluster) restarts at 0; 0 must never be waited on.
		if meta.LastIndex < index {
			index = 0
		} else {
			index = meta.LastIndex
		}
		index = max(index, 1)
	}
}

// consulAnswered records whether a query failed; it reports whether the
// answer holds data.
func (w *companion) consulAnswered(a kvAnswer) bool {
	if a.err != nil {
		refused := consulapi.IsForbidden(a.err)
		if w.consulErr[a.prefix] == "" || w.refused[a.prefix] != refused {
			msg := "Consul cannot be reached; the last good ACLs and keys stay in force"
			if refused {
				msg = "Consul refuses the token of token_file; the last good ACLs and keys stay in force"
			}
			w.log.Warn(msg, "prefix", a.prefix, "token_file", w.cfg.TokenFile, "err", a.err)
		}
		w.consulErr[a.prefix], w.refused[a.prefix] = a.err.Error(), refused
		if refused {
			// "403 ACL not found", without the api package's
			// "Unexpected response code": the reason names the
			// token first and has 128 bytes.
			w.consulErr[a.prefix] = consulapi.Describe(a.err)
		}
	} else {
		if w.consulErr[a.prefix] != "" {
			w.log.Info("Consul answers again", "prefix", a.prefix)
		}
		delete(w.consulErr, a.prefix)
		delete(w.refused, a.prefix)
	}
	w.reportConsul()
	return a.err == nil
}

// reportConsul puts one of the queries' errors (the first prefix's) in
// the status, or none, and what the answers hid.
func (w *companion) reportConsul() {
	w.status.ConsulError, w.status.ConsulRefused = "", false
	if ps := slices.Sorted(maps.Keys(w.consulErr)); len(ps) > 0 {
		w.status.ConsulError, w.status.ConsulRefused = w.consulErr[ps[0]], w.refused[ps[0]]
	}
	w.status.Hidden = nil
	for _, p := range slices.Sorted(maps.Keys(w.hidden)) {
		w.status.Hidden = append(w.status.Hidden, w.hidden[p]...)
	}
}

// hide records what an answer for prefix hid (none clears the record).
func (w *companion) hide(prefix string, keys []string) {
	slices.Sort(keys)
	if len(keys) > 0 && !slices.Equal(keys, w.hidden[prefix]) {
		w.log.Warn("Consul hides keys from the token of token_file (it lacks key:read); what was in force there stays",
			"keys", strings.Join(keys, ","), "token_file", w.cfg.TokenFile)
	}
	if len(keys) == 0 {
		delete(w.hidden, prefix)
	} else {
		w.hidden[prefix] = keys
	}
	w.reportConsul()
}

// apply takes one answer of Consul into the ACLs.
func (w *companion) apply(a kvAnswer) {
	if !w.consulAnswered(a) {
		return
	}
	w.status.LastSync = time.Now().UTC()
	w.status.ConsulIndex = a.index
	present := map[string]bool{}
	rejected := map[string]string{}
	for _, p := range a.pairs {
		svc := strings.TrimPrefix(p.Key, w.cfg.KVPrefix)
		if !slices.Contains(w.cfg.Services, svc) {
			continue
		}
		present[svc] = true
		d, err := acl.Parse(p.Value)
		if err != nil {
			rejected[svc] = err.Error()
			if w.status.Rejected[svc] != rejected[svc] {
				w.log.Warn("ACL document refused; the last good one stays", "service", svc, "key", p.Key, "err", err)
			}
			continue
		}
		if old := w.acls[svc]; old == nil || old.Digest != d.Digest {
			w.log.Info("ACL document accepted", "service", svc, "version", d.Version, "mode", d.Mode)
		}
		w.acls[svc] = d
	}
	// Consul filtered the answer by the token's ACLs: a routed
	// service's document missing from it may be there, unreadable to
	// this token. One in force stays; without one the service stays
	// denied, and either way the status says why.
	var hidden []string
	if a.filtered {
		for _, svc := range w.cfg.Services {
			if !present[svc] {
				hidden = append(hidden, w.cfg.KVPrefix+svc)
			}
		}
	}
	for svc := range w.acls {
		if !present[svc] && !a.filtered {
			w.log.Info("ACL document deleted from Consul; the service is denied", "service", svc)
			delete(w.acls, svc)
		}
	}
	w.hide(w.cfg.KVPrefix, hidden)
	w.status.Rejected = rejected
}

// applyKeys takes one answer of Consul for the keys prefix.
func (w *companion) applyKeys(a kvAnswer) {
	if !w.consulAnswered(a) {
		return
	}
	pairs := make([]policy.KVPair, 0, len(a.pairs))
	for _, p := range a.pairs {
		pairs = append(pairs, policy.KVPair{Key: p.Key, Value: p.Value})
	}
	var hidden []string
	if a.filtered {
		for path := range w.kvKeys {
			if !slices.ContainsFunc(pairs, func(p policy.KVPair) bool { return p.Key == path }) {
				hidden = append(hidden, path)
			}
		}
		if len(pairs) == 0 && len(hidden) == 0 {
			// Nothing in force, nothing readable: the whole prefix.
			hidden = []string{a.prefix}
		}
	}
	w.hide(a.prefix, hidden)
	if len(hidden) > 0 {
		// Keys the token may not read are not revoked: the answer is
		// set aside and the keys in force stay.
		return
	}
	w.keyPairs = pairs
	w.selectKeys()
}

// selectKeys validates the last keys answer against the policy in force.
func (w *companion) selectKeys() {
	if w.policy == nil {
		// Nothing to judge the keys by yet: keep what was restored.
		return
	}
	if w.keyPairs == nil {
		// No answer yet: the last good keys stay, as far as the policy
		// still admits them.
		w.kvKeys = policy.FitKVKeys(w.policy, w.cfg.KeysPrefix, w.kvKeys)
		return
	}
	keys, refused := policy.SelectKVKeys(w.policy, w.cfg.KeysPrefix, w.keyPairs, w.kvKeys)
	for path, why := range refused {
		if w.status.RejectedKeys[path] != why {
			w.log.Warn("JWT key document refused; the last good key there stays", "key", path, "err", why)
		}
	}
	for path, k := range keys {
		if old, ok := w.kvKeys[path]; !ok || old.Key.Version != k.Key.Version {
			w.log.Info("JWT key from Consul accepted", "key", path, "issuer", k.Issuer, "kind", k.Key.Kind, "version", k.Key.Version)
		}
	}
	for path := range w.kvKeys {
		if _, ok := keys[path]; !ok {
			w.log.Info("JWT key removed; tokens it signed are refused", "key", path)
		}
	}
	w.kvKeys, w.status.RejectedKeys = keys, refused
}

// loadPolicy re-reads the policy file and its keys; a failure keeps the
// policy in force. It starts the keys query when an issuer takes keys
// from Consul KV, and stops it when none does any more.
func (w *companion) loadPolicy(ctx context.Context) {
	p, err := readPolicy(w.cfg.PolicyFile)
	if err != nil {
		if w.status.PolicyError != err.Error() {
			w.log.Error("the JWT policy cannot be loaded; the one in force stays", "err", err)
		}
		w.status.PolicyError = err.Error()
		return
	}
	w.status.PolicyError = ""
	// The files are re-read every tick; the KV keys are judged again
	// only when the policy changed.
	changed := !reflect.DeepEqual(w.policy, p)
	w.policy = p
	want := w.cfg.KeysPrefix != "" && slices.ContainsFunc(p.Issuers, func(is policy.CompiledIssuer) bool { return is.KVKeys != "" })
	switch {
	case want && w.stopKeys == nil:
		kctx, cancel := context.WithCancel(ctx)
		w.stopKeys = cancel
		go w.follow(kctx, w.client, w.cfg.KeysPrefix, w.answers)
	case !want && w.stopKeys != nil:
		w.stopKeys()
		w.stopKeys, w.keyPairs = nil, nil
		delete(w.consulErr, w.cfg.KeysPrefix)
		delete(w.hidden, w.cfg.KeysPrefix)
		w.reportConsul()
	}
	if changed {
		w.selectKeys()
	}
}

func readPolicy(path string) (*policy.Compiled, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := policy.Parse(data)
	if err != nil {
		return nil, err
	}
	return policy.Load(f)
}

// sync persists and pushes the current state when nginx does not hold it.
func (w *companion) sync(ctx context.Context) {
	defer w.writeStatus()
	w.status.ACLs = map[string]string{}
	for svc, d := range w.acls {
		w.status.ACLs[svc] = fmt.Sprintf("%s v%d", d.Digest, d.Version)
	}
	w.status.Keys = map[string]string{}
	for path, k := range w.kvKeys {
		w.status.Keys[path] = k.Key.Version
	}
	if w.policy == nil {
		// Without a policy nothing can be verified: nginx denies all.
		return
	}
	st, err := state.NewWithKVKeys(w.policy, maps.Clone(w.kvKeys), maps.Clone(w.acls))
	if err != nil {
		w.status.PushError = err.Error()
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if v, err := w.nginx.Get(pctx); err == nil && v.Version == st.Version {
		w.status.PushError, w.status.Pushed = "", st.Version
		return
	}
	// Persisted before it is pushed: a restart enforces what nginx was
	// about to hold.
	if err := state.Write(w.cfg.StateFile, st); err != nil {
		w.status.PushError = "persisting the state: " + err.Error()
		return
	}
	if err := w.nginx.Push(pctx, st); err != nil {
		if w.status.PushError != err.Error() {
			w.log.Error("pushing the state into nginx failed", "err", err)
		}
		w.status.PushError = err.Error()
		return
	}
	w.log.Info("state pushed into nginx", "version", st.Version, "acls", len(st.ACLs), "kv_keys", len(st.KVKeys))
	w.status.PushError, w.status.Pushed = "", st.Version
}

func (w *companion) writeStatus() {
	data, err := json.Marshal(&w.status)
	if err == nil && string(data) == string(w.lastStatus) {
		return
	}
	if err == nil {
		err = process.WriteFileAtomic(w.cfg.StatusFile, data, 0o600)
	}
	if err == nil {
		w.lastStatus = data
	}
	if err != nil {
		w.log.Error("writing the status file", "err", err)
	}
}
