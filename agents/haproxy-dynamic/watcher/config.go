// Package watcher keeps HAProxy's backends equal to the passing instances
// of their Consul services. It runs as a daemon beside HAProxy (the agent
// binary started with the hidden argument "watch"), follows Consul with
// blocking queries, one per route, and applies changes through HAProxy's
// runtime API: fill a free slot and set it ready, drain a departed
// instance and put it in maintenance once idle. It reloads HAProxy only
// when a backend runs out of slots.
//
// It never empties a backend because Consul cannot be reached: an error
// leaves the last known good membership in place and is recorded in the
// status file, which the agent's monitor reads to report "degraded".
package watcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ha-framework/ha-framework/agents/haproxy-dynamic/haproxycfg"
	"github.com/ha-framework/ha-framework/ocf/daemon"
)

// Config is what the agent hands the watcher, in a file of mode 0600. It
// names the token file, never holds the token.
type Config struct {
	haproxycfg.Settings

	Haproxy       string `json:"haproxy"`         // the binary, for haproxy -c
	ConfigFile    string `json:"config_file"`     // the running configuration
	MasterPIDFile string `json:"master_pid_file"` // HAProxy's master, signalled to reload
	StatusFile    string `json:"status_file"`

	ConsulAddress string `json:"consul_address"`
	TokenFile     string `json:"token_file,omitempty"`
	Datacenter    string `json:"datacenter,omitempty"`
	Tag           string `json:"tag,omitempty"` // routes without a tag of their own use it

	// Wait is the blocking queries' wait time: how long Consul holds a
	// query without a change before it answers anyway.
	Wait time.Duration `json:"wait"`
	// DrainPeriod is how long a departed instance keeps its existing
	// sessions before maintenance cuts them.
	DrainPeriod time.Duration `json:"drain_period"`
	// KeepLast keeps a backend's last passing instances when Consul
	// reports none passing, so that HAProxy goes on retrying them (and
	// redispatches to the first instance that passes again) rather than
	// refusing every request at once.
	KeepLast bool `json:"keep_last"`
	// MaxSlots caps the server slots of a backend: HAProxy's
	// configuration check, run at every reload, takes seconds per ten
	// thousand servers. Passing instances beyond it are left out, and
	// reported in the status. 0 means DefaultMaxSlots.
	MaxSlots int `json:"max_slots,omitempty"`
}

// DefaultMaxSlots is the cap on a backend's slots when Config.MaxSlots is
// unset. HAProxy 2.6 checks a configuration of a thousand servers in a
// fraction of a second.
const DefaultMaxSlots = 1000

// WriteConfig stores c at path, atomically, mode 0600.
func WriteConfig(path string, c *Config) error { return daemon.WriteConfig(path, c) }

// LoadConfig reads a Config written by WriteConfig.
func LoadConfig(path string) (*Config, error) {
	var c Config
	if err := daemon.ReadConfig(path, &c); err != nil {
		return nil, fmt.Errorf("watcher: %w", err)
	}
	if len(c.Routes) == 0 || c.Socket == "" || c.StatusFile == "" || c.ConsulAddress == "" || c.Wait <= 0 {
		return nil, fmt.Errorf("watcher configuration %s is incomplete", path)
	}
	if c.MaxSlots == 0 {
		c.MaxSlots = DefaultMaxSlots
	}
	if c.Retries == 0 {
		// Written by a version without the setting: its fixed value.
		c.Retries = 2
	}
	return &c, nil
}

// Status is what the watcher reports in its status file.
type Status struct {
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// LastSync is when every route last had a successful answer from
	// Consul: the oldest of the routes' LastSync, zero until each route
	// had one.
	LastSync time.Time `json:"last_sync"`
	// ConsulError is the latest Consul failure of any route, "" when
	// every route's last query succeeded.
	ConsulError string `json:"consul_error,omitempty"`
	// TooManyQueries is set while Consul refuses some route's query with
	// HTTP 429 (ErrTooManyQueries): its per-client connection limit is
	// below what the watcher needs.
	TooManyQueries bool `json:"too_many_queries,omitempty"`
	// ApplyError is the latest failure to apply a change to HAProxy, ""
	// once the backends match.
	ApplyError string                 `json:"apply_error,omitempty"`
	Reloads    int                    `json:"reloads"`
	Routes     map[string]RouteStatus `json:"routes"`
}

// RouteStatus is one route's view of Consul.
type RouteStatus struct {
	// Instances are the routable passing instances (address:port) last
	// seen, at most max_slots of them; Passing counts them all.
	Instances []string `json:"instances"`
	Passing   int      `json:"passing"`
	// Skipped describes passing entries that are never routed: malformed
	// entries, instances without an IP address and port, and addresses
	// no backend may use (one of this resource's own listeners, an
	// unspecified, multicast or broadcast address). It lists at most ten;
	// SkippedCount counts them all.
	Skipped      []string `json:"skipped,omitempty"`
	SkippedCount int      `json:"skipped_count,omitempty"`
	// LeftOut counts the routable passing instances that get no slot
	// because the backend holds max_slots already.
	LeftOut int `json:"left_out,omitempty"`
	// Kept lists the instances HAProxy keeps routing to although none
	// passes (Config.KeepLast); empty while some instance passes.
	Kept []string `json:"kept,omitempty"`
	// KeptSince is when the route began keeping them: zero while some
	// instance passes. A failover keeps a single instance's route for
	// its whole length; the monitor tells that apart from an outage.
	KeptSince time.Time `json:"kept_since,omitempty"`
	Index     uint64    `json:"index"`
	LastSync  time.Time `json:"last_sync"`
	Error     string    `json:"error,omitempty"`
	// TooManyQueries is set while the last query failed with
	// ErrTooManyQueries.
	TooManyQueries bool `json:"too_many_queries,omitempty"`
}

// Problems describes, on one line, what the watcher does not route
// although Consul reports it passing: instances left out beyond
// max_slots, and skipped entries. It returns "" when every passing
// instance is routed.
func (s *Status) Problems() string {
	var out []string
	for _, svc := range slices.Sorted(maps.Keys(s.Routes)) {
		rs := s.Routes[svc]
		if rs.LeftOut > 0 {
			out = append(out, fmt.Sprintf("%s: %d passing instances left out beyond max_slots", svc, rs.LeftOut))
		}
		if rs.SkippedCount > 0 && len(rs.Skipped) > 0 {
			more := ""
			if rs.SkippedCount > 1 {
				more = fmt.Sprintf(" and %d more", rs.SkippedCount-1)
			}
			out = append(out, fmt.Sprintf("%s: not routed: %s%s", svc, rs.Skipped[0], more))
		}
	}
	return strings.Join(out, "; ")
}

// ErrNoStatus is returned by ReadStatus before the watcher wrote one.
var ErrNoStatus = errors.New("the watcher has not written its status yet")

// ReadStatus reads the status file.
func ReadStatus(path string) (*Status, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoStatus
	}
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("status file %s: %w", path, err)
	}
	return &s, nil
}
