package harness

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// Status is what one node's `crm_mon -1 --output-as=xml` says about the
// cluster: that node's view, which in a partition differs between nodes.
type Status struct {
	DC     string               // name of the DC, "" when none is elected
	Quorum bool                 // the partition of the asking node has quorum
	Nodes  map[string]NodeState // by node name
	// Resources maps each primitive's id (clone instances share it) to the
	// nodes where Pacemaker believes it active.
	Resources map[string][]string
	// Roles maps each primitive's id to its roles, one per instance.
	Roles map[string][]string
	// Failed lists the primitives marked failed.
	Failed []string
	// Failures are the failed operations Pacemaker remembers. A failed
	// start leaves its resource Stopped and not marked failed (the node
	// is banned instead), so only this tells why an instance never ran.
	Failures []Failure
}

// Failure is one failed operation, as crm_mon's failures section lists it.
type Failure struct {
	Resource string // primitive id, without a clone's instance number
	Op       string // start, monitor, stop …
	Node     string
	ExitCode int
	// Reason is the agent's exit reason, which Pacemaker cuts at 128
	// characters.
	Reason string
}

func (f Failure) String() string {
	s := fmt.Sprintf("%s %s on %s: exit %d", f.Resource, f.Op, f.Node, f.ExitCode)
	if f.Reason != "" {
		s += " (" + f.Reason + ")"
	}
	return s
}

// NodeState is one node as crm_mon reports it.
type NodeState struct {
	Online  bool
	Unclean bool
	Pending bool
}

// ParseStatus parses the XML output of `crm_mon -1 --output-as=xml`.
func ParseStatus(xml []byte) (Status, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(xml); err != nil {
		return Status{}, fmt.Errorf("crm_mon XML: %w", err)
	}
	root := doc.SelectElement("pacemaker-result")
	if root == nil {
		return Status{}, fmt.Errorf("crm_mon XML: no pacemaker-result element")
	}
	s := Status{Nodes: map[string]NodeState{}, Resources: map[string][]string{}, Roles: map[string][]string{}}
	if dc := root.FindElement("summary/current_dc"); dc != nil && dc.SelectAttrValue("present", "") == "true" {
		s.DC = dc.SelectAttrValue("name", "")
		s.Quorum = dc.SelectAttrValue("with_quorum", "") == "true"
	}
	for _, n := range root.FindElements("nodes/node") {
		s.Nodes[n.SelectAttrValue("name", "")] = NodeState{
			Online:  n.SelectAttrValue("online", "") == "true",
			Unclean: n.SelectAttrValue("unclean", "") == "true",
			Pending: n.SelectAttrValue("pending", "") == "true",
		}
	}
	for _, r := range root.FindElements("resources//resource") {
		id := r.SelectAttrValue("id", "")
		if _, ok := s.Resources[id]; !ok {
			s.Resources[id] = nil
		}
		if r.SelectAttrValue("active", "") == "true" {
			for _, n := range r.SelectElements("node") {
				s.Resources[id] = append(s.Resources[id], n.SelectAttrValue("name", ""))
			}
		}
		s.Roles[id] = append(s.Roles[id], r.SelectAttrValue("role", ""))
		if r.SelectAttrValue("failed", "") == "true" {
			s.Failed = append(s.Failed, id)
		}
	}
	for _, f := range root.FindElements("failures/failure") {
		code, _ := strconv.Atoi(f.SelectAttrValue("exitcode", ""))
		op := f.SelectAttrValue("task", "")
		// op_key is RESOURCE_TASK_INTERVAL; the resource id may itself
		// hold underscores, so cut the known suffix off.
		rsc := strings.TrimSuffix(f.SelectAttrValue("op_key", ""), "_"+op+"_"+f.SelectAttrValue("interval", "0"))
		rsc, _, _ = strings.Cut(rsc, ":") // clone instance lb:1 → lb
		s.Failures = append(s.Failures, Failure{Resource: rsc, Op: op, Node: f.SelectAttrValue("node", ""),
			ExitCode: code, Reason: f.SelectAttrValue("exitreason", "")})
	}
	return s, nil
}

// FailuresOf lists the failed operations of the primitives ids, "" for
// none: for the message of a wait that a failure can explain.
func (s Status) FailuresOf(ids ...string) string {
	var out []string
	for _, f := range s.Failures {
		if slices.Contains(ids, f.Resource) {
			out = append(out, f.String())
		}
	}
	return strings.Join(out, "; ")
}

// Ready reports whether a DC is elected with quorum and every named node
// is online; the string says what is missing.
func (s Status) Ready(nodes []string) (bool, string) {
	if s.DC == "" {
		return false, "no DC"
	}
	if !s.Quorum {
		return false, "no quorum"
	}
	for _, n := range nodes {
		if st, ok := s.Nodes[n]; !ok || !st.Online || st.Pending || st.Unclean {
			return false, fmt.Sprintf("node %s not online (%+v)", n, st)
		}
	}
	return true, ""
}
