package ocf

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout is the operation timeout assumed when Pacemaker does not
// pass OCF_RESKEY_CRM_meta_timeout; it is Pacemaker's own default.
const DefaultTimeout = 20 * time.Second

// DefaultStateDir is where state files live when HA_RSCTMP is unset, as
// resource-agents' ocf-directories defines it. It is cleared at boot.
const DefaultStateDir = "/run/resource-agents"

// Env is the OCF environment of one invocation. Its zero value reads
// nothing; build it with NewEnv.
type Env struct {
	lookup func(string) (string, bool)
}

// NewEnv returns an Env reading variables through lookup, such as
// os.LookupEnv, or a map in tests. A nil lookup reads nothing.
func NewEnv(lookup func(string) (string, bool)) Env { return Env{lookup: lookup} }

// MapEnv returns an Env over a fixed set of variables.
func MapEnv(vars map[string]string) Env {
	return NewEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
}

// Lookup returns the variable name and whether it is set.
func (e Env) Lookup(name string) (string, bool) {
	if e.lookup == nil {
		return "", false
	}
	return e.lookup(name)
}

// Get returns the variable name, or "" when unset.
func (e Env) Get(name string) string { v, _ := e.Lookup(name); return v }

// Param returns the raw value of instance parameter name
// (OCF_RESKEY_<name>), or "" and false when unset or empty.
func (e Env) Param(name string) (string, bool) {
	v, ok := e.Lookup("OCF_RESKEY_" + name)
	return v, ok && v != ""
}

// Meta returns the resource or operation meta-attribute name as Pacemaker
// passes it (OCF_RESKEY_CRM_meta_<name>, with '-' written as '_').
func (e Env) Meta(name string) (string, bool) {
	return e.Lookup("OCF_RESKEY_CRM_meta_" + strings.ReplaceAll(name, "-", "_"))
}

// Instance is the resource id (OCF_RESOURCE_INSTANCE); clone instances
// look like "rsc:2".
func (e Env) Instance() string { return e.Get("OCF_RESOURCE_INSTANCE") }

// ResourceType is the agent's name (OCF_RESOURCE_TYPE).
func (e Env) ResourceType() string { return e.Get("OCF_RESOURCE_TYPE") }

// Timeout is the operation timeout (OCF_RESKEY_CRM_meta_timeout, in
// milliseconds), or DefaultTimeout when unset or unreadable.
func (e Env) Timeout() time.Duration {
	if ms, ok := e.metaMillis("timeout"); ok && ms > 0 {
		return ms
	}
	return DefaultTimeout
}

// Interval is the recurring monitor's interval, 0 for a probe or any
// other action (Pacemaker does not set it then).
func (e Env) Interval() time.Duration {
	ms, _ := e.metaMillis("interval")
	return ms
}

func (e Env) metaMillis(name string) (time.Duration, bool) {
	v, ok := e.Meta(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}

// CheckLevel is the requested monitor or validation depth
// (OCF_CHECK_LEVEL, also accepted as OCF_RESKEY_OCF_CHECK_LEVEL), and
// whether it was given at all.
func (e Env) CheckLevel() (int, bool) {
	v, ok := e.Lookup("OCF_CHECK_LEVEL")
	if !ok || v == "" {
		v, ok = e.Param("OCF_CHECK_LEVEL")
	}
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, false
	}
	return n, true
}

// StateDir is where per-resource state lives (HA_RSCTMP, else
// DefaultStateDir).
func (e Env) StateDir() string {
	if d := e.Get("HA_RSCTMP"); d != "" {
		return d
	}
	return DefaultStateDir
}

// FailHaveBinary reports whether ocf-tester asks the agent to behave as if
// none of its binaries were installed (OCF_TESTER_FAIL_HAVE_BINARY=1).
func (e Env) FailHaveBinary() bool { return e.Get("OCF_TESTER_FAIL_HAVE_BINARY") == "1" }

// Clone describes the clone an instance belongs to.
type Clone struct {
	// Instance is this copy's number (CRM_meta_clone); -1 when not a clone.
	Instance int
	// Max and NodeMax are clone-max and clone-node-max.
	Max, NodeMax int
	// GloballyUnique is true when every copy is distinct.
	GloballyUnique bool
	// Promotable is true for a promotable clone.
	Promotable bool
	// PromotedMax and PromotedNodeMax bound how many copies are promoted.
	PromotedMax, PromotedNodeMax int
	// Notify is true when the clone sends notifications.
	Notify bool
}

// Clone returns the clone information, and false when the resource is not
// a clone.
func (e Env) Clone() (Clone, bool) {
	c := Clone{Instance: -1}
	max, ok := e.metaInt("clone_max")
	if !ok {
		return c, false
	}
	c.Max = max
	c.NodeMax, _ = e.metaInt("clone_node_max")
	if n, ok := e.metaInt("clone"); ok {
		c.Instance = n
	} else if i := strings.LastIndexByte(e.Instance(), ':'); i >= 0 {
		c.Instance, _ = strconv.Atoi(e.Instance()[i+1:])
	}
	c.GloballyUnique = e.metaBool("globally_unique")
	c.Notify = e.metaBool("notify")
	c.PromotedMax, _ = e.metaIntAny("promoted_max", "master_max")
	c.PromotedNodeMax, _ = e.metaIntAny("promoted_node_max", "master_node_max")
	c.Promotable = e.metaBool("promotable") || c.PromotedMax > 0
	return c, true
}

func (e Env) metaInt(name string) (int, bool) {
	v, ok := e.Meta(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	return n, err == nil
}

func (e Env) metaIntAny(names ...string) (int, bool) {
	for _, n := range names {
		if v, ok := e.metaInt(n); ok {
			return v, true
		}
	}
	return 0, false
}

func (e Env) metaBool(name string) bool {
	v, _ := e.Meta(name)
	b, err := ParseBool(v)
	return err == nil && b
}

// Peer is one clone instance named in a notification.
type Peer struct {
	Resource string // instance id, e.g. "db:1"
	Node     string // node name
}

// Notification is what Pacemaker tells a clone instance in a notify action.
type Notification struct {
	Type      string // "pre" or "post"
	Operation string // "start", "stop", "promote" or "demote"
	Start, Stop, Active, Inactive,
	Promote, Demote, Promoted, Unpromoted []Peer
	// AllNodes lists every node the cluster knows (notify_all_uname).
	AllNodes []string
}

// Notification parses the notify variables; ok is false outside a notify
// action.
func (e Env) Notification() (n Notification, ok bool) {
	n.Type, ok = e.Meta("notify_type")
	if !ok {
		return n, false
	}
	n.Operation, _ = e.Meta("notify_operation")
	n.Start = e.peers("start")
	n.Stop = e.peers("stop")
	n.Active = e.peers("active")
	n.Inactive = e.peers("inactive")
	n.Promote = e.peers("promote")
	n.Demote = e.peers("demote")
	// Pacemaker before 2.1 used master/slave for these two lists.
	if n.Promoted = e.peers("promoted"); n.Promoted == nil {
		n.Promoted = e.peers("master")
	}
	if n.Unpromoted = e.peers("unpromoted"); n.Unpromoted == nil {
		n.Unpromoted = e.peers("slave")
	}
	all, _ := e.Meta("notify_all_uname")
	n.AllNodes = strings.Fields(all)
	return n, true
}

func (e Env) peers(list string) []Peer {
	rv, _ := e.Meta("notify_" + list + "_resource")
	nv, _ := e.Meta("notify_" + list + "_uname")
	rs, ns := strings.Fields(rv), strings.Fields(nv)
	if len(rs) == 0 {
		return nil
	}
	peers := make([]Peer, len(rs))
	for i, r := range rs {
		peers[i].Resource = r
		if i < len(ns) {
			peers[i].Node = ns[i]
		}
	}
	return peers
}

// Migration returns the source and target nodes of a live migration
// (migrate_to, migrate_from, and the stop/start that follow them).
func (e Env) Migration() (source, target string, ok bool) {
	source, sok := e.Meta("migrate_source")
	target, tok := e.Meta("migrate_target")
	return source, target, sok && tok
}

// OSEnv returns the process environment.
func OSEnv() Env { return NewEnv(os.LookupEnv) }

// ParseBool applies Pacemaker's truth rules: "true", "on", "yes", "y" and
// "1" are true; "false", "off", "no", "n" and "0" are false, in any case.
// Anything else is an error.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "on", "yes", "y", "1":
		return true, nil
	case "false", "off", "no", "n", "0":
		return false, nil
	}
	return false, strconv.ErrSyntax
}
