package cluster

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/process"
)

func TestAttributeArgs(t *testing.T) {
	c := CLI{AttrdUpdater: "/opt/pcmk/attrd_updater"}
	tests := []struct {
		name      string
		life      Lifetime
		op, value string
		wantPath  string
		wantArgs  []string
		wantUnset []int
	}{
		{"transient update", Transient, "update", "-v x", "/opt/pcmk/attrd_updater",
			[]string{"--name=attr", "--node=n1", "--update=-v x"}, []int{105, 78}},
		{"transient query", Transient, "query", "", "/opt/pcmk/attrd_updater",
			[]string{"--name=attr", "--node=n1", "--output-as=xml", "--query"}, []int{105, 78}},
		{"transient delete", Transient, "delete", "", "/opt/pcmk/attrd_updater",
			[]string{"--name=attr", "--node=n1", "--delete"}, []int{105, 78}},
		{"permanent update", Permanent, "update", "1", "crm_attribute",
			[]string{"--name=attr", "--node=n1", "--lifetime=forever", "--update=1"}, []int{105}},
		{"permanent query", Permanent, "query", "", "crm_attribute",
			[]string{"--name=attr", "--node=n1", "--lifetime=forever", "--output-as=xml", "--query"}, []int{105}},
		{"permanent delete", Permanent, "delete", "", "crm_attribute",
			[]string{"--name=attr", "--node=n1", "--lifetime=forever", "--delete"}, []int{105}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, args, unset := c.attributeArgs(tt.life, "n1", "attr", tt.op, tt.value)
			if path != tt.wantPath {
				t.Errorf("path = %q, want %q", path, tt.wantPath)
			}
			if diff := cmp.Diff(tt.wantArgs, args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantUnset, unset); diff != "" {
				t.Errorf("unset statuses (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPromotionArgs(t *testing.T) {
	got := promotionArgs("db:2", "remote-1", "--delete")
	want := []string{"--promotion=db", "--lifetime=reboot", "--node=remote-1", "--delete"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("promotionArgs (-want +got):\n%s", diff)
	}
}

// TestParseValue reads outputs captured from Pacemaker 2.1.5's tools.
func TestParseValue(t *testing.T) {
	tests := []struct {
		file, want string
	}{
		{"attrd-query.xml", `a"b<c`},
		{"attrd-query-unset.xml", ""},
		{"crm-attribute-query.xml", `q"<`},
		{"crm-attribute-query-unset.xml", ""},
		{"crm-attribute-promotion.xml", "42"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			out, err := os.ReadFile("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseValue(out)
			if err != nil || got != tt.want {
				t.Errorf("parseValue = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "not xml <", "<other/>"} {
		if got, err := parseValue([]byte(bad)); err == nil {
			t.Errorf("parseValue(%q) = %q, want an error", bad, got)
		}
	}
}

func TestExitStatus(t *testing.T) {
	if got := exitStatus(&process.ExitError{Status: 105}); got != ExitNoSuchObject {
		t.Errorf("exitStatus(105) = %d", got)
	}
	if got := exitStatus(errors.Join(errors.New("wrapped"), &process.ExitError{Status: 78})); got != ExitConfig {
		t.Errorf("exitStatus(wrapped 78) = %d", got)
	}
	if got := exitStatus(context.DeadlineExceeded); got != -1 {
		t.Errorf("exitStatus(not an exit) = %d", got)
	}
	if got := exitStatus(nil); got != -1 {
		t.Errorf("exitStatus(nil) = %d", got)
	}
}

// TestLocalNodePrefersOnNode: Pacemaker's name wins, and no tool runs
// (the one configured does not exist).
func TestLocalNodePrefersOnNode(t *testing.T) {
	c := CLI{CrmNode: "/nonexistent/crm_node"}
	env := ocf.MapEnv(map[string]string{"OCF_RESKEY_CRM_meta_on_node": "remote-1"})
	if got, err := c.LocalNode(context.Background(), env); err != nil || got != "remote-1" {
		t.Errorf("LocalNode with on_node = %q, %v; want remote-1", got, err)
	}
	for _, env := range []ocf.Env{{}, ocf.MapEnv(map[string]string{"OCF_RESKEY_CRM_meta_on_node": " "})} {
		if got, err := c.LocalNode(context.Background(), env); !errors.Is(err, ErrNoNodeName) {
			t.Errorf("LocalNode without on_node and without crm_node = %q, %v; want ErrNoNodeName", got, err)
		}
	}
	// Found by name in the fixed PATH, as the zero CLI does.
	if got, err := (CLI{CrmNode: "hafw-no-such-crm_node"}).LocalNode(context.Background(), ocf.Env{}); !errors.Is(err, ErrNoNodeName) {
		t.Errorf("LocalNode without on_node, crm_node not in PATH = %q, %v; want ErrNoNodeName", got, err)
	}
	// Attributes of node "" need the name too.
	if err := c.SetAttribute(context.Background(), "", "a", "1", Transient); !errors.Is(err, ErrNoNodeName) {
		t.Errorf("SetAttribute of node \"\" without crm_node = %v; want ErrNoNodeName", err)
	}
	// An explicit node never asks crm_node either.
	if got, err := c.node(context.Background(), "n2"); err != nil || got != "n2" {
		t.Errorf("node(n2) = %q, %v", got, err)
	}
}

func TestLifetimeString(t *testing.T) {
	for l, want := range map[Lifetime]string{Transient: "transient", Permanent: "permanent", 7: "Lifetime(7)"} {
		if got := l.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(l), got, want)
		}
	}
}
