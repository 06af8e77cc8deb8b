// Package companion keeps nginx's shared state equal to the configuration
// and Consul KV, without reloading nginx. It runs beside nginx (the agent
// binary started with the hidden argument "watch"): it follows the ACL
// prefix with one blocking query, validates every document, loads the JWT
// policy and its key files, persists the result as the last good state
// and pushes it through nginx's root-only state socket.
//
// Consul being unreachable changes nothing in force: the last good ACLs
// stay, and the status file says why, for the monitor to report degraded.
// A document that fails validation is refused and the last good version of
// that service's ACL stays; a deleted document removes the ACL (deny).
package companion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ha-framework/ha-framework/agents/openresty-gateway/acl"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/policy"
	"github.com/ha-framework/ha-framework/agents/openresty-gateway/state"
	"github.com/ha-framework/ha-framework/internal/consulapi"
	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/daemon"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// Config is what the agent hands the companion, in a file of mode 0600.
// It names the token file, never holds the token.
type Config struct {
	PolicyFile    string        `json:"policy_file"`
	ConsulAddress string        `json:"consul_address"`
	TokenFile     string        `json:"token_file,omitempty"`
	Datacenter    string        `json:"datacenter,omitempty"`
	KVPrefix      string        `json:"kv_prefix"` // e.g. "acl/"
	Services      []string      `json:"services"`  // the routed services; other documents are ignored
	StateFile     string        `json:"state_file"`
	StatusFile    string        `json:"status_file"`
	Socket        string        `json:"socket"`
	Wait          time.Duration `json:"wait"` // the blocking query's wait
	Tick          time.Duration `json:"tick"` // key files re-read and nginx re-checked this often
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
	PolicyError string `json:"policy_error,omitempty"`
	PushError   string `json:"push_error,omitempty"`
	// Rejected maps a service to why its document in Consul was refused.
	Rejected map[string]string `json:"rejected,omitempty"`
	// Pushed is the state version nginx last accepted.
	Pushed string `json:"pushed,omitempty"`
	// ACLs maps each service to the digest (and version) in force.
	ACLs map[string]string `json:"acls"`
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

// kvAnswer is one answer of the blocking query.
type kvAnswer struct {
	pairs api.KVPairs
	index uint64
	err   error
}

type companion struct {
	cfg    *Config
	log    *slog.Logger
	nginx  state.Client
	policy *policy.Compiled
	acls   map[string]*acl.Document
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
	var token string
	if c.TokenFile != "" {
		t, err := ocf.ReadSecretFile(c.TokenFile, "token_file")
		if err != nil {
			return err
		}
		token = t
	}
	client, err := consulapi.NewClient(consulapi.Options{Address: c.ConsulAddress, Token: token})
	if err != nil {
		return err
	}
	w := &companion{cfg: c, log: log, nginx: state.Client{Socket: c.Socket}, acls: map[string]*acl.Document{},
		status: Status{PID: os.Getpid(), ACLs: map[string]string{}, Rejected: map[string]string{}}}
	// The last good state first: a restart during a Consul outage
	// enforces what was in force before.
	if last, err := state.Read(c.StateFile); err == nil {
		for svc, d := range last.ACLs {
			if slices.Contains(c.Services, svc) {
				w.acls[svc] = d
			}
		}
		log.Info("loaded the last good state", "version", last.Version, "acls", len(w.acls))
	} else if !errors.Is(err, state.ErrNone) {
		log.Warn("the persisted state cannot be read; starting from none (deny)", "err", err)
	}
	w.loadPolicy()
	w.sync(ctx)

	answers := make(chan kvAnswer)
	go w.follow(ctx, client, answers)
	t := time.NewTicker(c.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-answers:
			w.apply(a)
		case <-t.C:
			w.loadPolicy()
		}
		w.sync(ctx)
	}
}

// follow runs the blocking query on the prefix and sends every answer.
func (w *companion) follow(ctx context.Context, client *api.Client, out chan<- kvAnswer) {
	var index uint64
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		// Each blocking query ends by its own deadline: Consul answers
		// within Wait plus its jitter (Wait/16), and a query that hangs
		// past that is a lost connection.
		qctx, cancel := context.WithTimeout(ctx, w.cfg.Wait+w.cfg.Wait/16+10*time.Second)
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: w.cfg.Wait, Datacenter: w.cfg.Datacenter, AllowStale: true}).WithContext(qctx)
		pairs, meta, err := client.KV().List(w.cfg.KVPrefix, q)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			select {
			case out <- kvAnswer{err: err}:
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
		case out <- kvAnswer{pairs: pairs, index: meta.LastIndex}:
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

// apply takes one answer of Consul into the ACLs.
func (w *companion) apply(a kvAnswer) {
	if a.err != nil {
		if w.status.ConsulError == "" {
			w.log.Warn("Consul cannot be reached; the last good ACLs stay in force", "err", a.err)
		}
		w.status.ConsulError = a.err.Error()
		return
	}
	if w.status.ConsulError != "" {
		w.log.Info("Consul answers again")
	}
	w.status.ConsulError = ""
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
	for svc := range w.acls {
		if !present[svc] {
			w.log.Info("ACL document deleted from Consul; the service is denied", "service", svc)
			delete(w.acls, svc)
		}
	}
	w.status.Rejected = rejected
}

// loadPolicy re-reads the policy file and its keys; a failure keeps the
// policy in force.
func (w *companion) loadPolicy() {
	p, err := readPolicy(w.cfg.PolicyFile)
	if err != nil {
		if w.status.PolicyError != err.Error() {
			w.log.Error("the JWT policy cannot be loaded; the one in force stays", "err", err)
		}
		w.status.PolicyError = err.Error()
		return
	}
	w.status.PolicyError = ""
	w.policy = p
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
	if w.policy == nil {
		// Without a policy nothing can be verified: nginx denies all.
		return
	}
	st, err := state.New(w.policy, maps.Clone(w.acls))
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
	w.log.Info("state pushed into nginx", "version", st.Version, "acls", len(st.ACLs))
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
