package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// metadata is the part of an OCF 1.1 meta-data document a manual page shows.
type metadata struct {
	XMLName   xml.Name `xml:"resource-agent"`
	Name      string   `xml:"name,attr"`
	Version   string   `xml:"version,attr"`
	LongDesc  []desc   `xml:"longdesc"`
	ShortDesc []desc   `xml:"shortdesc"`
	Params    []param  `xml:"parameters>parameter"`
	Actions   []action `xml:"actions>action"`
}

type desc struct {
	Lang string `xml:"lang,attr"`
	Text string `xml:",chardata"`
}

type param struct {
	Name        string      `xml:"name,attr"`
	Required    string      `xml:"required,attr"`
	Unique      string      `xml:"unique,attr"` // OCF 1.0, still accepted by Pacemaker
	UniqueGroup string      `xml:"unique-group,attr"`
	Reloadable  string      `xml:"reloadable,attr"`
	LongDesc    []desc      `xml:"longdesc"`
	ShortDesc   []desc      `xml:"shortdesc"`
	Deprecated  *deprecated `xml:"deprecated"`
	Content     content     `xml:"content"`
}

type deprecated struct {
	ReplacedWith []struct {
		Name string `xml:"name,attr"`
	} `xml:"replaced-with"`
	Desc []desc `xml:"desc"`
}

type content struct {
	Type    string `xml:"type,attr"`
	Default string `xml:"default,attr"`
	Options []struct {
		Value string `xml:"value,attr"`
	} `xml:"option"`
}

type action struct {
	Name     string `xml:"name,attr"`
	Timeout  string `xml:"timeout,attr"`
	Interval string `xml:"interval,attr"`
	Depth    string `xml:"depth,attr"`
	Role     string `xml:"role,attr"`
}

// agentName is what may stand in a page title and in the file name of
// the page: an OCF agent's name is a file name in the provider folder.
var agentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// parse reads one meta-data document. It fails on XML that is not a
// resource-agent element, and on an agent or parameter without a usable name.
func parse(r io.Reader) (*metadata, error) {
	var md metadata
	if err := xml.NewDecoder(r).Decode(&md); err != nil {
		return nil, fmt.Errorf("meta-data: %w", err)
	}
	if !agentName.MatchString(md.Name) {
		return nil, fmt.Errorf("meta-data: agent name %q is not a file name", md.Name)
	}
	for _, p := range md.Params {
		if p.Name == "" {
			return nil, errors.New("meta-data: a parameter has no name")
		}
	}
	return &md, nil
}

// english picks the English text of a description (OCF allows one per
// language), else the first one given.
func english(ds []desc) string {
	for _, d := range ds {
		if d.Lang == "en" || d.Lang == "" {
			return strings.TrimSpace(d.Text)
		}
	}
	if len(ds) > 0 {
		return strings.TrimSpace(ds[0].Text)
	}
	return ""
}

// escape makes text safe on a roff text line: backslashes print as
// themselves, hyphens are the ASCII ones a reader copies into a shell,
// characters beyond ASCII are named (troff reads bytes, not UTF-8, unless
// a preprocessor converts them), and a line starting with a control
// character is not taken as a request.
func escape(s string) string {
	s = nonASCII(strings.NewReplacer(`\`, `\e`, `-`, `\-`).Replace(s))
	// \: after the commas of a long word lets groff break a list written
	// without spaces (a routes example) instead of overflowing the line.
	words := strings.Split(s, " ")
	for i, w := range words {
		if len(w) > 40 {
			words[i] = strings.ReplaceAll(w, ",", `,\:`)
		}
	}
	s = strings.Join(words, " ")
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// arg quotes s as one argument of a roff request.
func arg(s string) string {
	s = strings.NewReplacer(`\`, `\e`, `-`, `\-`, `"`, `\(dq`, "\n", " ").Replace(s)
	return `"` + nonASCII(s) + `"`
}

// nonASCII writes each character beyond ASCII as groff's \[uXXXX].
func nonASCII(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, `\[u%04X]`, r)
		}
	}
	return b.String()
}

// text writes a description: each of its lines on a line of its own,
// blank lines as paragraph breaks.
func text(w io.Writer, s string) {
	first := true
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			if !first {
				fmt.Fprintln(w, ".sp")
			}
			first = true
			continue
		case !first:
			fmt.Fprintln(w, ".br")
		}
		fmt.Fprintln(w, escape(line))
		first = false
	}
}

// actionText says what an action does; Pacemaker's meaning, not the agent's.
var actionText = map[string]string{
	"start":        "Starts the resource; returns once a monitor would find it running.",
	"stop":         "Stops the resource; succeeds for a resource that is not running.",
	"monitor":      "Checks the resource's state.",
	"promote":      "Promotes the resource to the promoted role.",
	"demote":       "Demotes the resource to the unpromoted role.",
	"notify":       "Receives clone notifications before and after other instances' actions.",
	"migrate_to":   "Migrates the resource to another node (source side).",
	"migrate_from": "Migrates the resource to this node (target side).",
	"reload-agent": "Applies changes of reloadable parameters without restarting the resource.",
	"meta-data":    "Prints this agent's meta-data XML.",
	"validate-all": "Checks the parameters and what the resource needs on this node.",
}

func isTrue(v string) bool { return v == "1" || v == "true" || v == "yes" }

// render writes the page of md, installed as ocf:provider:name.
func render(w io.Writer, md *metadata, provider, date string) {
	page := "ocf_" + provider + "_" + md.Name
	source := provider
	if md.Version != "" {
		source += " " + md.Version
	}
	fmt.Fprintf(w, ".\\\" Generated by ocfman from the meta-data of %s; do not edit.\n", escape(md.Name))
	fmt.Fprintf(w, ".TH %s 7 %s %s %s\n", arg(strings.ToUpper(page)), arg(date), arg(source), arg("OCF resource agents"))
	fmt.Fprintln(w, ".nh\n.ad l")

	fmt.Fprintln(w, ".SH NAME")
	name := escape(page)
	if sd := english(md.ShortDesc); sd != "" {
		name += ` \- ` + escape(strings.ReplaceAll(sd, "\n", " "))
	}
	fmt.Fprintln(w, name)

	fmt.Fprintln(w, ".SH SYNOPSIS")
	fmt.Fprintf(w, "\\fB%s\\fR [%s]\n", escape(md.Name), escape(strings.Join(actionNames(md.Actions), " | ")))

	fmt.Fprintln(w, ".SH DESCRIPTION")
	text(w, english(md.LongDesc))
	fmt.Fprintln(w, ".PP")
	fmt.Fprintf(w, "Pacemaker and crmsh name this agent \\fBocf:%s:%s\\fR; Pacemaker passes each parameter in the environment as \\fBOCF_RESKEY_\\fR\\fIname\\fR.\n",
		escape(provider), escape(md.Name))

	if len(md.Params) > 0 {
		fmt.Fprintln(w, `.SH "SUPPORTED PARAMETERS"`)
		for _, p := range md.Params {
			fmt.Fprintf(w, ".PP\n\\fB%s\\fR\n.RS 4\n", escape(p.Name))
			ld := english(p.LongDesc)
			if ld == "" {
				ld = english(p.ShortDesc)
			}
			text(w, ld)
			if p.Deprecated != nil {
				fmt.Fprintln(w, ".sp")
				line := "Deprecated"
				var with []string
				for _, r := range p.Deprecated.ReplacedWith {
					with = append(with, r.Name)
				}
				if len(with) > 0 {
					line += "; replaced by " + strings.Join(with, ", ")
				}
				line += "."
				if d := english(p.Deprecated.Desc); d != "" {
					line += " " + strings.ReplaceAll(d, "\n", " ")
				}
				fmt.Fprintln(w, escape(line))
			}
			fmt.Fprintln(w, ".sp")
			fmt.Fprintln(w, escape("("+strings.Join(attributes(p), ", ")+")"))
			fmt.Fprintln(w, ".RE")
		}
	}

	if len(md.Actions) > 0 {
		fmt.Fprintln(w, `.SH "SUPPORTED ACTIONS"`)
		fmt.Fprintln(w, ".PP\nThis resource agent supports the following actions (operations):")
		for _, a := range md.Actions {
			fmt.Fprintf(w, ".PP\n\\fB%s\\fR\n.RS 4\n", escape(a.Name))
			s := actionText[a.Name]
			if a.Name == "monitor" && a.Role != "" {
				s = "Checks the resource's state in the " + a.Role + " role."
			}
			if a.Timeout != "" {
				s += " Suggested minimum timeout: " + a.Timeout + "."
			}
			if a.Interval != "" && a.Interval != "0" {
				s += " Suggested interval: " + a.Interval + "."
			}
			if a.Depth != "" && a.Depth != "0" {
				s += " Check depth (OCF_CHECK_LEVEL): " + a.Depth + "."
			}
			fmt.Fprintln(w, escape(strings.TrimSpace(s)))
			fmt.Fprintln(w, ".RE")
		}
	}

	fmt.Fprintln(w, `.SH "EXAMPLE CRM SHELL"`)
	fmt.Fprintln(w, ".PP\nThe following is an example configuration for this resource agent using the \\fBcrm\\fR(8) shell:")
	fmt.Fprintln(w, ".sp\n.RS 4\n.nf")
	fmt.Fprintln(w, escape(crmExample(md, provider)))
	fmt.Fprintln(w, ".fi\n.RE")
	fmt.Fprintln(w, `.SH "EXAMPLE PCS"`)
	fmt.Fprintln(w, ".PP\nThe following is an example configuration for this resource agent using \\fBpcs\\fR(8):")
	fmt.Fprintln(w, ".sp\n.RS 4\n.nf")
	fmt.Fprintln(w, escape(pcsExample(md, provider)))
	fmt.Fprintln(w, ".fi\n.RE")

	fmt.Fprintln(w, `.SH "SEE ALSO"`)
	fmt.Fprintln(w, "\\fBcrm_resource\\fR(8), \\fBpcs\\fR(8), \\fBcrm\\fR(8)")
}

// attributes are the facts about a parameter a reader checks at a glance.
func attributes(p param) []string {
	a := []string{"optional"}
	if isTrue(p.Required) {
		a[0] = "required"
	}
	if isTrue(p.Unique) || p.UniqueGroup != "" {
		u := "unique"
		if p.UniqueGroup != "" && p.UniqueGroup != p.Name {
			u += " with group " + p.UniqueGroup
		}
		a = append(a, u)
	}
	if isTrue(p.Reloadable) {
		a = append(a, "reloadable")
	}
	t := p.Content.Type
	if t == "" {
		t = "string"
	}
	if len(p.Content.Options) > 0 {
		var vs []string
		for _, o := range p.Content.Options {
			vs = append(vs, o.Value)
		}
		t += " of " + strings.Join(vs, ", ")
	}
	a = append(a, t)
	if p.Content.Default != "" {
		a = append(a, fmt.Sprintf("default %q", p.Content.Default))
	}
	return a
}

// actionNames lists each action once, in the order of the meta-data.
func actionNames(as []action) []string {
	var names []string
	seen := map[string]bool{}
	for _, a := range as {
		if !seen[a.Name] {
			seen[a.Name] = true
			names = append(names, a.Name)
		}
	}
	return names
}

// requiredParams is "name=type" for every required, non-deprecated parameter.
func requiredParams(md *metadata) []string {
	var ps []string
	for _, p := range md.Params {
		if isTrue(p.Required) && p.Deprecated == nil {
			t := p.Content.Type
			if t == "" {
				t = "string"
			}
			ps = append(ps, p.Name+"="+t)
		}
	}
	return ps
}

// firstMonitor is the first monitor action, the one an example configures.
func firstMonitor(md *metadata) (action, bool) {
	for _, a := range md.Actions {
		if a.Name == "monitor" && a.Interval != "" && a.Interval != "0" {
			return a, true
		}
	}
	return action{}, false
}

func crmExample(md *metadata, provider string) string {
	lines := []string{fmt.Sprintf("primitive p_%s ocf:%s:%s", md.Name, provider, md.Name)}
	if ps := requiredParams(md); len(ps) > 0 {
		lines = append(lines, "  params "+strings.Join(ps, " "))
	}
	if m, ok := firstMonitor(md); ok {
		lines = append(lines, fmt.Sprintf("  op monitor interval=%s timeout=%s", m.Interval, orDefault(m.Timeout, "20s")))
	}
	return strings.Join(lines, " \\\n")
}

func pcsExample(md *metadata, provider string) string {
	line := fmt.Sprintf("pcs resource create p_%s ocf:%s:%s", md.Name, provider, md.Name)
	if ps := requiredParams(md); len(ps) > 0 {
		line += " " + strings.Join(ps, " ")
	}
	if m, ok := firstMonitor(md); ok {
		line += fmt.Sprintf(" \\\n  op monitor interval=%s timeout=%s", m.Interval, orDefault(m.Timeout, "20s"))
	}
	return line
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
