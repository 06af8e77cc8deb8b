// Package cluster talks to the local Pacemaker through its command-line
// tools, always under the caller's deadline. It needs no cgo and no
// Pacemaker libraries, so agents that use it stay static.
//
// Promotion scores need Pacemaker 2.1 or later (crm_attribute --promotion).
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// CLI runs Pacemaker's tools. The zero value finds them on PATH; set the
// fields to use other paths (tests, unusual installs).
type CLI struct {
	CrmNode      string // default "crm_node"
	CrmAttribute string // default "crm_attribute"
}

// ErrNoValue is returned when an attribute is not set.
var ErrNoValue = errors.New("attribute not set")

// LocalNode returns this node's name as the cluster knows it (crm_node -n).
func (c CLI) LocalNode(ctx context.Context) (string, error) {
	out, err := run(ctx, or(c.CrmNode, "crm_node"), "-n")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// SetPromotionScore sets the promotion score of resource on node (the
// local node when node is ""), for the node's current boot only, which is
// what Pacemaker's promotable clones expect. A clone instance suffix
// ("db:1") is ignored: the score belongs to the clone.
func (c CLI) SetPromotionScore(ctx context.Context, resource, node string, score int) error {
	_, err := run(ctx, or(c.CrmAttribute, "crm_attribute"), promotionArgs(resource, node, "-v", strconv.Itoa(score))...)
	return err
}

// DeletePromotionScore removes the promotion score; removing an absent
// score succeeds.
func (c CLI) DeletePromotionScore(ctx context.Context, resource, node string) error {
	_, err := run(ctx, or(c.CrmAttribute, "crm_attribute"), promotionArgs(resource, node, "-D")...)
	return err
}

// PromotionScore returns the current promotion score, or ErrNoValue.
func (c CLI) PromotionScore(ctx context.Context, resource, node string) (int, error) {
	out, err := run(ctx, or(c.CrmAttribute, "crm_attribute"), promotionArgs(resource, node, "-G", "-q")...)
	if err != nil {
		if strings.Contains(err.Error(), "No such device or address") || strings.Contains(err.Error(), "not found") {
			return 0, ErrNoValue
		}
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		return 0, fmt.Errorf("crm_attribute printed %q, not a score", strings.TrimSpace(out))
	}
	return n, nil
}

func promotionArgs(resource, node string, rest ...string) []string {
	if i := strings.IndexByte(resource, ':'); i >= 0 {
		resource = resource[:i]
	}
	args := []string{"--promotion=" + resource, "--lifetime=reboot"}
	if node != "" {
		args = append(args, "--node="+node)
	}
	return append(args, rest...)
}

// run executes a Pacemaker tool with a minimal environment (the agent's
// own holds instance parameters) and returns its stdout. A failure's error
// carries the tool's stderr on one line.
func run(ctx context.Context, path string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s %s: %w", path, strings.Join(args, " "), ctx.Err())
		}
		return "", fmt.Errorf("%s %s: %w: %s", path, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
