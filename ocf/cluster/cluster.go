// Package cluster talks to the local Pacemaker through its command-line
// tools (crm_node, crm_attribute, attrd_updater), always under the
// caller's deadline and through process.Run. It needs no cgo and no
// Pacemaker libraries, so agents that use it stay static.
//
// It is written for pacemaker_remote nodes too, where Pacemaker proxies
// the tools' connections to the cluster: the node is always named to the
// tools (--node), because process.Run gives them none of the agent's
// environment, from which they would otherwise guess it, and the local
// node's name comes from Pacemaker itself (LocalNode). The live tests run
// on a full node (make integration) and on a pacemaker_remote node (the
// e2e remote-node scenario). Failures are
// told apart by the tools' exit statuses (Pacemaker's crm_exit_t codes),
// never by the text they print.
//
// Promotion scores need Pacemaker 2.1 or later (crm_attribute --promotion).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/process"
)

// Exit statuses of Pacemaker's tools (crm_exit_t) that this package gives
// a meaning to; any other failure is returned as it is.
const (
	// ExitConfig (CRM_EX_CONFIG) is how attrd_updater of Pacemaker 2.1
	// reports the query of an attribute it never held.
	ExitConfig = 78
	// ExitNoSuchObject (CRM_EX_NOSUCH): the attribute, or the node, does
	// not exist.
	ExitNoSuchObject = 105
)

// ErrNoValue is returned when an attribute or score is not set.
var ErrNoValue = errors.New("attribute not set")

// ErrUnknownNode is returned when setting a permanent attribute of a node
// the cluster configuration does not know.
var ErrUnknownNode = errors.New("node not known to the cluster")

// ErrNoNodeName is returned when this node's name cannot be found: the
// action's environment does not give it and crm_node is not installed,
// as on Debian's pacemaker_remote nodes (crm_node comes with the
// pacemaker package, which conflicts with pacemaker-remote). Pacemaker
// gives the name to every action it runs; an administrator's crm_resource
// --force-* run does not.
var ErrNoNodeName = errors.New("node name unknown: OCF_RESKEY_CRM_meta_on_node unset and no crm_node")

// CLI runs Pacemaker's tools. The zero value finds them in process.Run's
// fixed PATH; set the fields to use other paths (unusual installs).
type CLI struct {
	CrmNode      string // default "crm_node"
	CrmAttribute string // default "crm_attribute"
	AttrdUpdater string // default "attrd_updater"
}

// Lifetime says how long a node attribute lives.
type Lifetime int

const (
	// Transient attributes live in the attribute manager (attrd_updater)
	// and the CIB's status section, until the node leaves the cluster
	// or reboots: what an agent publishes about its current state.
	Transient Lifetime = iota
	// Permanent attributes live in the CIB's configuration
	// (crm_attribute --lifetime=forever) until deleted.
	Permanent
)

func (l Lifetime) String() string {
	switch l {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	}
	return "Lifetime(" + strconv.Itoa(int(l)) + ")"
}

// LocalNode returns this node's name as Pacemaker knows it. Pacemaker
// passes it to every action it runs (OCF_RESKEY_CRM_meta_on_node), and
// that name is right on pacemaker_remote nodes too, where it is the
// remote resource's id rather than the host name; env is the action's
// environment (Request.Env). Without it (an administrator's crm_resource
// --force-* run, or a zero Env) the answer is crm_node -n's.
//
// Return values:
//   - (name, nil): the node's name.
//   - ("", err) with errors.Is(err, ErrNoNodeName): env has no name and
//     crm_node is not installed (a pacemaker_remote node).
//   - ("", err) with errors.As(err, **process.ExitError): crm_node failed.
//   - ("", err) with errors.Is(err, ctx.Err()): ctx ended first.
//   - ("", err): crm_node printed nothing, or could not be started.
func (c CLI) LocalNode(ctx context.Context, env ocf.Env) (string, error) {
	if n, ok := env.Meta("on_node"); ok && strings.TrimSpace(n) != "" {
		return strings.TrimSpace(n), nil
	}
	out, err := process.Run(ctx, or(c.CrmNode, "crm_node"), "-n")
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w (%w)", ErrNoNodeName, err)
	}
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(string(out))
	if name == "" {
		return "", errors.New("crm_node -n printed no node name")
	}
	return name, nil
}

// node returns node, or crm_node's name for this node when node is "".
func (c CLI) node(ctx context.Context, node string) (string, error) {
	if node != "" {
		return node, nil
	}
	return c.LocalNode(ctx, ocf.Env{})
}

// SetAttribute sets the node attribute name of node to value. node ""
// is the node crm_node -n names, which on a pacemaker_remote node may not
// be Pacemaker's name for it: pass LocalNode's answer instead. A
// Transient update reaches the attribute manager of every node
// asynchronously, so a read right after it may still see the old value.
//
// Return values:
//   - nil: the attribute is set (Permanent) or the update was accepted
//     (Transient).
//   - err with errors.Is(err, ErrUnknownNode): Permanent, and the
//     cluster configuration has no such node.
//   - err with errors.As(err, **process.ExitError): the tool failed
//     otherwise.
//   - err with errors.Is(err, ctx.Err()): ctx ended first.
//   - err: the tool could not be run, or the node's name not found.
func (c CLI) SetAttribute(ctx context.Context, node, name, value string, life Lifetime) error {
	node, err := c.node(ctx, node)
	if err != nil {
		return err
	}
	path, args, _ := c.attributeArgs(life, node, name, "update", value)
	_, err = process.Run(ctx, path, args...)
	if life == Permanent && exitStatus(err) == ExitNoSuchObject {
		return fmt.Errorf("%w: %s (%w)", ErrUnknownNode, node, err)
	}
	return err
}

// Attribute returns the node attribute name of node (node "" as for
// SetAttribute).
//
// Return values:
//   - (value, nil): the attribute's value, never "".
//   - ("", err) with errors.Is(err, ErrNoValue): the attribute is not
//     set, or is set to "" (which Pacemaker treats as unset), or the node
//     is unknown (the tools do not tell these apart).
//   - ("", err) with errors.As(err, **process.ExitError): the tool failed
//     otherwise.
//   - ("", err) with errors.Is(err, ctx.Err()): ctx ended first.
//   - ("", err): the tool could not be run, or its output not read.
func (c CLI) Attribute(ctx context.Context, node, name string, life Lifetime) (string, error) {
	node, err := c.node(ctx, node)
	if err != nil {
		return "", err
	}
	path, args, unset := c.attributeArgs(life, node, name, "query", "")
	return query(ctx, path, args, unset)
}

// DeleteAttribute removes the node attribute name of node (node "" as
// for SetAttribute). Deleting an absent attribute succeeds.
//
// Return values:
//   - nil: the attribute is gone (Permanent) or its removal was accepted
//     (Transient).
//   - err with errors.As(err, **process.ExitError): the tool failed.
//   - err with errors.Is(err, ctx.Err()): ctx ended first.
//   - err: the tool could not be run, or the node's name not found.
func (c CLI) DeleteAttribute(ctx context.Context, node, name string, life Lifetime) error {
	node, err := c.node(ctx, node)
	if err != nil {
		return err
	}
	path, args, _ := c.attributeArgs(life, node, name, "delete", "")
	_, err = process.Run(ctx, path, args...)
	if exitStatus(err) == ExitNoSuchObject {
		return nil
	}
	return err
}

// attributeArgs builds the command line of op ("update", "query" or
// "delete") on a node attribute, and lists the exit statuses that mean
// "not set" for a query. Every value is written --option=value, so that
// none can be read as an option of its own.
func (c CLI) attributeArgs(life Lifetime, node, name, op, value string) (path string, args []string, unset []int) {
	path, unset = or(c.CrmAttribute, "crm_attribute"), []int{ExitNoSuchObject}
	args = []string{"--name=" + name, "--node=" + node}
	if life == Transient {
		path, unset = or(c.AttrdUpdater, "attrd_updater"), []int{ExitNoSuchObject, ExitConfig}
	} else {
		args = append(args, "--lifetime=forever")
	}
	switch op {
	case "update":
		args = append(args, "--update="+value)
	case "query":
		args = append(args, "--output-as=xml", "--query")
	case "delete":
		args = append(args, "--delete")
	}
	return path, args, unset
}

// SetPromotionScore sets the promotion score of resource on node, for
// the node's current boot only, which is what Pacemaker's promotable
// clones expect. node "" is the node crm_node -n names (see
// SetAttribute). A clone instance suffix ("db:1") is ignored: the score
// belongs to the clone.
//
// Return values are those of SetAttribute.
func (c CLI) SetPromotionScore(ctx context.Context, resource, node string, score int) error {
	node, err := c.node(ctx, node)
	if err != nil {
		return err
	}
	_, err = process.Run(ctx, or(c.CrmAttribute, "crm_attribute"), promotionArgs(resource, node, "--update="+strconv.Itoa(score))...)
	if exitStatus(err) == ExitNoSuchObject {
		return fmt.Errorf("%w: %s (%w)", ErrUnknownNode, node, err)
	}
	return err
}

// DeletePromotionScore removes the promotion score of resource on node
// (node "" as for SetPromotionScore); removing an absent score succeeds.
//
// Return values are those of DeleteAttribute.
func (c CLI) DeletePromotionScore(ctx context.Context, resource, node string) error {
	node, err := c.node(ctx, node)
	if err != nil {
		return err
	}
	_, err = process.Run(ctx, or(c.CrmAttribute, "crm_attribute"), promotionArgs(resource, node, "--delete")...)
	if exitStatus(err) == ExitNoSuchObject {
		return nil
	}
	return err
}

// PromotionScore returns the promotion score of resource on node (node ""
// as for SetPromotionScore).
//
// Return values:
//   - (score, nil): the score.
//   - (0, err) with errors.Is(err, ErrNoValue): no score is set.
//   - (0, err): as for Attribute, or the value is not an integer.
func (c CLI) PromotionScore(ctx context.Context, resource, node string) (int, error) {
	node, err := c.node(ctx, node)
	if err != nil {
		return 0, err
	}
	v, err := query(ctx, or(c.CrmAttribute, "crm_attribute"), promotionArgs(resource, node, "--output-as=xml", "--query"), []int{ExitNoSuchObject})
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("promotion score of %s on %s is %q, not an integer", resource, node, v)
	}
	return n, nil
}

func promotionArgs(resource, node string, rest ...string) []string {
	if i := strings.IndexByte(resource, ':'); i >= 0 {
		resource = resource[:i]
	}
	args := []string{"--promotion=" + resource, "--lifetime=reboot", "--node=" + node}
	return append(args, rest...)
}

// query runs a tool's --output-as=xml --query and returns the value it
// reports; the exit statuses in unset mean it has none.
func query(ctx context.Context, path string, args []string, unset []int) (string, error) {
	out, err := process.Run(ctx, path, args...)
	if err != nil {
		if slices.Contains(unset, exitStatus(err)) {
			return "", fmt.Errorf("%w (%w)", ErrNoValue, err)
		}
		return "", err
	}
	v, err := parseValue(out)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if v == "" {
		return "", ErrNoValue
	}
	return v, nil
}

// parseValue reads the value of the first attribute in a tool's
// --output-as=xml answer. An answer without one has value "".
func parseValue(out []byte) (string, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(out); err != nil {
		return "", fmt.Errorf("reading its XML output: %w", err)
	}
	root := doc.SelectElement("pacemaker-result")
	if root == nil {
		return "", errors.New("its XML output has no pacemaker-result")
	}
	attr := root.SelectElement("attribute")
	if attr == nil {
		return "", nil
	}
	return attr.SelectAttrValue("value", ""), nil
}

// exitStatus returns the exit status of a tool's failure, or -1 when err
// is not an exit (or nil).
func exitStatus(err error) int {
	var ee *process.ExitError
	if errors.As(err, &ee) {
		return ee.Status
	}
	return -1
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
