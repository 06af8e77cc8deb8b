package ocf

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEnvTimes(t *testing.T) {
	tests := []struct {
		name     string
		vars     map[string]string
		timeout  time.Duration
		interval time.Duration
	}{
		{"unset", nil, DefaultTimeout, 0},
		{"given", map[string]string{"OCF_RESKEY_CRM_meta_timeout": "90000", "OCF_RESKEY_CRM_meta_interval": "10000"}, 90 * time.Second, 10 * time.Second},
		{"garbage", map[string]string{"OCF_RESKEY_CRM_meta_timeout": "soon", "OCF_RESKEY_CRM_meta_interval": "-5"}, DefaultTimeout, 0},
		{"zero timeout", map[string]string{"OCF_RESKEY_CRM_meta_timeout": "0"}, DefaultTimeout, 0},
	}
	for _, tt := range tests {
		e := MapEnv(tt.vars)
		if e.Timeout() != tt.timeout || e.Interval() != tt.interval {
			t.Errorf("%s: timeout %v interval %v, want %v %v", tt.name, e.Timeout(), e.Interval(), tt.timeout, tt.interval)
		}
	}
}

func TestCheckLevel(t *testing.T) {
	tests := []struct {
		vars  map[string]string
		level int
		set   bool
	}{
		{nil, 0, false},
		{map[string]string{"OCF_CHECK_LEVEL": "10"}, 10, true},
		{map[string]string{"OCF_RESKEY_OCF_CHECK_LEVEL": "20"}, 20, true},
		{map[string]string{"OCF_CHECK_LEVEL": "0"}, 0, true},
		{map[string]string{"OCF_CHECK_LEVEL": "deep"}, 0, false},
	}
	for _, tt := range tests {
		level, set := MapEnv(tt.vars).CheckLevel()
		if level != tt.level || set != tt.set {
			t.Errorf("%v: CheckLevel() = %d, %v; want %d, %v", tt.vars, level, set, tt.level, tt.set)
		}
	}
}

func TestClone(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want Clone
		ok   bool
	}{
		{"primitive", map[string]string{"OCF_RESOURCE_INSTANCE": "db"}, Clone{Instance: -1}, false},
		{"anonymous clone", map[string]string{
			"OCF_RESOURCE_INSTANCE": "web:2", "OCF_RESKEY_CRM_meta_clone_max": "3", "OCF_RESKEY_CRM_meta_clone_node_max": "1",
			"OCF_RESKEY_CRM_meta_clone": "2", "OCF_RESKEY_CRM_meta_notify": "true",
		}, Clone{Instance: 2, Max: 3, NodeMax: 1, Notify: true}, true},
		{"instance from the id", map[string]string{"OCF_RESOURCE_INSTANCE": "web:1", "OCF_RESKEY_CRM_meta_clone_max": "2"},
			Clone{Instance: 1, Max: 2}, true},
		{"promotable (2.1 names)", map[string]string{
			"OCF_RESKEY_CRM_meta_clone_max": "2", "OCF_RESKEY_CRM_meta_promotable": "true",
			"OCF_RESKEY_CRM_meta_promoted_max": "1", "OCF_RESKEY_CRM_meta_promoted_node_max": "1", "OCF_RESKEY_CRM_meta_globally_unique": "false",
		}, Clone{Instance: -1, Max: 2, Promotable: true, PromotedMax: 1, PromotedNodeMax: 1}, true},
		{"promotable (master names)", map[string]string{"OCF_RESKEY_CRM_meta_clone_max": "2", "OCF_RESKEY_CRM_meta_master_max": "1"},
			Clone{Instance: -1, Max: 2, Promotable: true, PromotedMax: 1}, true},
	}
	for _, tt := range tests {
		got, ok := MapEnv(tt.vars).Clone()
		if ok != tt.ok {
			t.Errorf("%s: ok = %v", tt.name, ok)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestNotification(t *testing.T) {
	vars := map[string]string{
		"OCF_RESKEY_CRM_meta_notify_type":             "pre",
		"OCF_RESKEY_CRM_meta_notify_operation":        "promote",
		"OCF_RESKEY_CRM_meta_notify_start_resource":   "db:0 db:1 ",
		"OCF_RESKEY_CRM_meta_notify_start_uname":      "n1 n2",
		"OCF_RESKEY_CRM_meta_notify_promote_resource": "db:1",
		"OCF_RESKEY_CRM_meta_notify_promote_uname":    "n2",
		"OCF_RESKEY_CRM_meta_notify_master_resource":  "db:0",
		"OCF_RESKEY_CRM_meta_notify_master_uname":     "n1",
		"OCF_RESKEY_CRM_meta_notify_stop_resource":    " ",
		"OCF_RESKEY_CRM_meta_notify_all_uname":        "n1 n2 n3",
	}
	got, ok := MapEnv(vars).Notification()
	want := Notification{
		Type: "pre", Operation: "promote",
		Start:    []Peer{{"db:0", "n1"}, {"db:1", "n2"}},
		Promote:  []Peer{{"db:1", "n2"}},
		Promoted: []Peer{{"db:0", "n1"}},
		AllNodes: []string{"n1", "n2", "n3"},
	}
	if !ok {
		t.Fatal("no notification found")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, ok := MapEnv(nil).Notification(); ok {
		t.Error("notification outside notify")
	}
}

func TestMigration(t *testing.T) {
	src, dst, ok := MapEnv(map[string]string{"OCF_RESKEY_CRM_meta_migrate_source": "n1", "OCF_RESKEY_CRM_meta_migrate_target": "n2"}).Migration()
	if src != "n1" || dst != "n2" || !ok {
		t.Errorf("Migration() = %q %q %v", src, dst, ok)
	}
	if _, _, ok := MapEnv(nil).Migration(); ok {
		t.Error("migration outside migrate")
	}
}

func TestParseBool(t *testing.T) {
	for _, v := range []string{"true", "on", "yes", "y", "1", "TRUE", "Yes", " on "} {
		if b, err := ParseBool(v); err != nil || !b {
			t.Errorf("ParseBool(%q) = %v, %v", v, b, err)
		}
	}
	for _, v := range []string{"false", "off", "no", "n", "0", "NO"} {
		if b, err := ParseBool(v); err != nil || b {
			t.Errorf("ParseBool(%q) = %v, %v", v, b, err)
		}
	}
	for _, v := range []string{"", "2", "ja", "maybe"} {
		if _, err := ParseBool(v); err == nil {
			t.Errorf("ParseBool(%q) accepted", v)
		}
	}
}
