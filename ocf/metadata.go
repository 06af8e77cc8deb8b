package ocf

import (
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// The names of the actions the SDK dispatches.
const (
	ActionStart       = "start"
	ActionStop        = "stop"
	ActionMonitor     = "monitor"
	ActionMetaData    = "meta-data"
	ActionValidateAll = "validate-all"
	ActionReloadAgent = "reload-agent"
	ActionPromote     = "promote"
	ActionDemote      = "demote"
	ActionNotify      = "notify"
	ActionMigrateTo   = "migrate_to"
	ActionMigrateFrom = "migrate_from"
)

// Roles for Action.Role.
const (
	RolePromoted   = "Promoted"
	RoleUnpromoted = "Unpromoted"
)

// Operation is an advertised action with the timeout and interval pcs copies
// into the operations it creates. An agent lists only the entries it wants
// to differ from the SDK's defaults; listing a name replaces every default
// entry of that name, which is how an agent advertises monitors at several
// depths or roles.
type Operation struct {
	Name       string
	Timeout    time.Duration
	Interval   time.Duration // monitor only
	StartDelay time.Duration
	Depth      int    // OCF_CHECK_LEVEL the operation passes (monitor)
	Role       string // RolePromoted or RoleUnpromoted (monitor of promotable resources)
}

// formatSeconds renders a duration as Pacemaker writes operation times:
// whole seconds with an "s" suffix, milliseconds when finer.
func formatSeconds(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// metadata is everything the meta-data XML is rendered from.
type metadata struct {
	name, version, short, long string
	params                     []Param
	actions                    []Operation
}

// writeMetadata renders OCF 1.1 meta-data. It does no I/O beyond w and
// never looks at the environment, so it works as any user.
func (m metadata) write(w io.Writer) error {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0"`)
	ra := doc.CreateElement("resource-agent")
	ra.CreateAttr("name", m.name)
	if m.version != "" {
		ra.CreateAttr("version", m.version)
	}
	ra.CreateElement("version").SetText("1.1")
	desc(ra, "longdesc", m.long)
	desc(ra, "shortdesc", m.short)

	ps := ra.CreateElement("parameters")
	for _, p := range m.params {
		pe := ps.CreateElement("parameter")
		pe.CreateAttr("name", p.name)
		if p.uniqueGroup != "" {
			pe.CreateAttr("unique-group", p.uniqueGroup)
		}
		pe.CreateAttr("required", boolAttr(p.required))
		if p.reloadable {
			pe.CreateAttr("reloadable", "1")
		}
		if p.deprecated {
			de := pe.CreateElement("deprecated")
			if p.replacedBy != "" {
				de.CreateElement("replaced-with").CreateAttr("name", p.replacedBy)
			}
			if p.deprecation != "" {
				desc(de, "desc", p.deprecation)
			}
		}
		desc(pe, "longdesc", p.longText())
		desc(pe, "shortdesc", p.short)
		ce := pe.CreateElement("content")
		ce.CreateAttr("type", p.content)
		if p.hasDefault {
			ce.CreateAttr("default", p.def)
		}
		for _, o := range p.options {
			ce.CreateElement("option").CreateAttr("value", o)
		}
	}

	as := ra.CreateElement("actions")
	for _, a := range m.actions {
		ae := as.CreateElement("action")
		ae.CreateAttr("name", a.Name)
		ae.CreateAttr("timeout", formatSeconds(a.Timeout))
		if a.Interval > 0 {
			ae.CreateAttr("interval", formatSeconds(a.Interval))
		}
		if a.StartDelay > 0 {
			ae.CreateAttr("start-delay", formatSeconds(a.StartDelay))
		}
		if a.Name == ActionMonitor {
			ae.CreateAttr("depth", strconv.Itoa(a.Depth))
		}
		if a.Role != "" {
			ae.CreateAttr("role", a.Role)
		}
	}
	doc.Indent(2)
	_, err := doc.WriteTo(w)
	return err
}

// longText is the long description with the enforced format appended, so
// that pcs resource describe tells what validation will accept.
func (p Param) longText() string {
	long := strings.TrimSpace(p.long)
	if long == "" {
		long = p.short
	}
	// A plain integer needs no words: the content type already says it.
	if p.format != "" && p.format != "an integer" {
		if !strings.HasSuffix(long, ".") {
			long += "."
		}
		long += "\nFormat: " + p.format + "."
	}
	if p.private {
		long += "\nThis value is kept out of logs and traces."
	}
	return long
}

func desc(parent *etree.Element, tag, text string) {
	e := parent.CreateElement(tag)
	e.CreateAttr("lang", "en")
	e.SetText(text)
}

func boolAttr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
