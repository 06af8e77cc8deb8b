//go:build integration

package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// These tests run against the single-node Pacemaker that make cluster-up
// starts; crm_mon -1 is the independent witness of what they change. The
// e2e remote-node scenario also runs them, built into a binary, on a
// pacemaker_remote node, with OCF_RESKEY_CRM_meta_on_node set as Pacemaker
// sets it for an agent's action: there the tools are proxied to the
// cluster, and Debian's remote nodes have no crm_node.

// localNode is this node's name as an agent's action finds it (from the
// environment Pacemaker gives it, else crm_node), and whether crm_node is
// installed, which node "" needs. Where it is, it must agree.
func localNode(t *testing.T, ctx context.Context) (node string, crmNode bool) {
	t.Helper()
	var c CLI
	node, err := c.LocalNode(ctx, ocf.NewEnv(os.LookupEnv))
	if err != nil || node == "" {
		t.Fatalf("LocalNode = %q, %v", node, err)
	}
	asked, err := c.LocalNode(ctx, ocf.Env{})
	switch {
	case errors.Is(err, ErrNoNodeName):
		t.Logf("no crm_node on %s: the tests of node \"\" check that it is refused", node)
		return node, false
	case err != nil:
		t.Fatalf("LocalNode without the environment: %v", err)
	case asked != node:
		t.Fatalf("crm_node -n says %q, Pacemaker's name is %q", asked, node)
	}
	return node, true
}

func requireCluster(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	if _, err := process.Run(ctx, "crm_mon", "-1"); err != nil {
		t.Skipf("no running Pacemaker (make cluster-up): crm_mon -1: %v", err)
	}
	return ctx
}

func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

// monAttribute returns the node attribute name of node as crm_mon -1 -A
// shows it, and whether it shows it at all.
func monAttribute(t *testing.T, ctx context.Context, node, name string) (string, bool) {
	t.Helper()
	out, err := process.Run(ctx, "crm_mon", "-1", "-A", "--output-as=xml")
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(out); err != nil {
		t.Fatal(err)
	}
	for _, n := range doc.FindElements("//node_attributes/node") {
		if n.SelectAttrValue("name", "") != node {
			continue
		}
		for _, a := range n.SelectElements("attribute") {
			if a.SelectAttrValue("name", "") == name {
				return a.SelectAttrValue("value", ""), true
			}
		}
	}
	return "", false
}

// eventually polls cond for up to 15 seconds: transient attributes reach
// the CIB asynchronously.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s; last: %s", what, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestLocalNodeLive(t *testing.T) {
	ctx := requireCluster(t)
	var c CLI
	node, crmNode := localNode(t, ctx)
	out, err := process.Run(ctx, "crm_mon", "-1", "--output-as=xml")
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(out); err != nil {
		t.Fatal(err)
	}
	if doc.FindElement("//nodes/node[@name='"+node+"']") == nil {
		t.Errorf("crm_mon does not list node %q", node)
	}
	if !crmNode {
		return
	}
	short, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-short.Done()
	if _, err := c.LocalNode(short, ocf.Env{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LocalNode after the deadline: %v, want DeadlineExceeded", err)
	}
}

func TestAttributesLive(t *testing.T) {
	ctx := requireCluster(t)
	var c CLI
	node, crmNode := localNode(t, ctx)
	for _, life := range []Lifetime{Transient, Permanent} {
		t.Run(life.String(), func(t *testing.T) {
			name := uniqueName(t, "hafw-sdk-"+life.String())
			t.Cleanup(func() { _ = c.DeleteAttribute(context.Background(), node, name, life) })
			if v, err := c.Attribute(ctx, node, name, life); !errors.Is(err, ErrNoValue) {
				t.Errorf("Attribute before setting = %q, %v; want ErrNoValue", v, err)
			}
			value := `two words "quoted" <b>`
			if err := c.SetAttribute(ctx, node, name, value, life); err != nil {
				t.Fatal(err)
			}
			eventually(t, "crm_mon to show the attribute", func() (bool, string) {
				v, ok := monAttribute(t, ctx, node, name)
				return ok && v == value, v
			})
			eventually(t, "Attribute to read it back", func() (bool, string) {
				v, err := c.Attribute(ctx, node, name, life)
				return err == nil && v == value, v
			})
			// node "" is the local node, if crm_node can tell it.
			if v, err := c.Attribute(ctx, "", name, life); crmNode && (err != nil || v != value) {
				t.Errorf("Attribute of node \"\" = %q, %v", v, err)
			} else if !crmNode && !errors.Is(err, ErrNoNodeName) {
				t.Errorf("Attribute of node \"\" without crm_node = %q, %v; want ErrNoNodeName", v, err)
			}
			if err := c.DeleteAttribute(ctx, node, name, life); err != nil {
				t.Fatal(err)
			}
			eventually(t, "crm_mon to drop the attribute", func() (bool, string) {
				v, ok := monAttribute(t, ctx, node, name)
				return !ok, v
			})
			eventually(t, "Attribute to report it unset", func() (bool, string) {
				v, err := c.Attribute(ctx, node, name, life)
				return errors.Is(err, ErrNoValue), v
			})
			if err := c.DeleteAttribute(ctx, node, name, life); err != nil {
				t.Errorf("deleting an absent attribute: %v", err)
			}
		})
	}
	t.Run("permanent on an unknown node", func(t *testing.T) {
		name := uniqueName(t, "hafw-sdk-unknown")
		err := c.SetAttribute(ctx, "hafw-no-such-node", name, "1", Permanent)
		var ee *process.ExitError
		if !errors.Is(err, ErrUnknownNode) || !errors.As(err, &ee) || ee.Status != ExitNoSuchObject {
			t.Errorf("SetAttribute on an unknown node = %v, want ErrUnknownNode from exit status 105", err)
		}
	})
}

func TestPromotionScoreLive(t *testing.T) {
	ctx := requireCluster(t)
	var c CLI
	node, crmNode := localNode(t, ctx)
	rsc := uniqueName(t, "hafw-sdk-score")
	t.Cleanup(func() { _ = c.DeletePromotionScore(context.Background(), rsc, node) })
	if _, err := c.PromotionScore(ctx, rsc+":0", node); !errors.Is(err, ErrNoValue) {
		t.Errorf("score before setting: %v, want ErrNoValue", err)
	}
	if err := c.SetPromotionScore(ctx, rsc+":0", node, 42); err != nil {
		t.Fatal(err)
	}
	// Pacemaker 2.1 still names the attribute master-RESOURCE.
	if v, ok := monAttribute(t, ctx, node, "master-"+rsc); !ok || v != "42" {
		t.Errorf("crm_mon shows master-%s = %q (%v), want 42", rsc, v, ok)
	}
	if got, err := c.PromotionScore(ctx, rsc+":1", node); err != nil || got != 42 {
		t.Errorf("score = %d, %v; want 42", got, err)
	}
	if got, err := c.PromotionScore(ctx, rsc, ""); crmNode && (err != nil || got != 42) {
		t.Errorf("score of node \"\" = %d, %v; want 42", got, err)
	} else if !crmNode && !errors.Is(err, ErrNoNodeName) {
		t.Errorf("score of node \"\" without crm_node = %d, %v; want ErrNoNodeName", got, err)
	}
	if err := c.SetPromotionScore(ctx, rsc, "hafw-no-such-node", 1); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("score on an unknown node: %v, want ErrUnknownNode", err)
	}
	if err := c.DeletePromotionScore(ctx, rsc, node); err != nil {
		t.Fatal(err)
	}
	if _, ok := monAttribute(t, ctx, node, "master-"+rsc); ok {
		t.Errorf("crm_mon still shows master-%s after delete", rsc)
	}
	if err := c.DeletePromotionScore(ctx, rsc, node); err != nil {
		t.Errorf("deleting an absent score: %v", err)
	}
}
