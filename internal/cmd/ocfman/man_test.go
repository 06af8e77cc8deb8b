package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.7 from the committed meta-data")

// TestGolden renders the committed meta-data of every agent and compares
// it with testdata/<agent>.7 (rewritten by -update): a change of the
// generator or of an agent's meta-data shows as a diff of the page.
func TestGolden(t *testing.T) {
	xmls, err := filepath.Glob("../../../metadata/*.xml")
	if err != nil || len(xmls) == 0 {
		t.Fatalf("no meta-data in metadata/: %v", err)
	}
	for _, x := range xmls {
		agent := strings.TrimSuffix(filepath.Base(x), ".xml")
		t.Run(agent, func(t *testing.T) {
			var out, errs bytes.Buffer
			if code := run([]string{"-date", "2026-01-02", x}, nil, &out, &errs); code != 0 {
				t.Fatalf("exit %d: %s", code, errs.String())
			}
			golden := filepath.Join("testdata", agent+".7")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("page of %s differs from %s (-want +got):\n%s", agent, golden, diff)
			}
		})
	}
}

// TestGroffClean formats every page as man(1) does, with all of groff's
// warnings on: lintian reports any warning as a defect of the package.
func TestGroffClean(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff not installed (Debian package groff-base)")
	}
	pages, _ := filepath.Glob("testdata/*.7")
	if len(pages) == 0 {
		t.Fatal("no pages in testdata/")
	}
	for _, p := range pages {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", p)
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff %s: %v\n%s", p, err, out)
		}
	}
}

func TestRender(t *testing.T) {
	const doc = `<?xml version="1.0"?>
<resource-agent name="odd" version="1&quot;2">
  <version>1.1</version>
  <longdesc lang="de">Deutsch</longdesc>
  <longdesc lang="en">.starts with a dot
'starts with a quote
back\slash and a-hyphen × 3</longdesc>
  <shortdesc lang="en">Odd agent</shortdesc>
  <parameters>
    <parameter name="mode" required="1" unique-group="g" reloadable="1">
      <shortdesc lang="en">Only a short one</shortdesc>
      <content type="select" default="a"><option value="a"/><option value="b"/></content>
    </parameter>
    <parameter name="old">
      <deprecated><replaced-with name="mode"/><desc lang="en">Gone.</desc></deprecated>
      <longdesc lang="en">Old</longdesc>
      <content/>
    </parameter>
  </parameters>
  <actions>
    <action name="start" timeout="30s"/>
    <action name="monitor" timeout="20s" interval="10s" depth="10"/>
    <action name="monitor" timeout="20s" interval="11s" role="Promoted"/>
  </actions>
</resource-agent>`
	var out, errs bytes.Buffer
	if code := run([]string{"-provider", "p", "-date", "2026-01-02"}, strings.NewReader(doc), &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	page := out.String()
	for _, want := range []string{
		`.TH "OCF_P_ODD" 7 "2026\-01\-02" "p 1\(dq2" "OCF resource agents"`, // a quote cannot end the argument early
		"ocf_p_odd \\- Odd agent\n",
		"\\&.starts with a dot\n", // not a roff request
		"\\&'starts with a quote\n",
		"back\\eslash and a\\-hyphen \\[u00D7] 3\n", // troff reads bytes
		"(required, unique with group g, reloadable, select of a, b, default \"a\")",
		"Only a short one\n", // shortdesc stands in for a missing longdesc
		"Deprecated; replaced by mode. Gone.\n",
		"(optional, string)",
		"\\fBodd\\fR [start | monitor]\n", // each action once
		"Check depth (OCF_CHECK_LEVEL): 10.",
		"in the Promoted role. Suggested minimum timeout: 20s. Suggested interval: 11s.",
		"params mode=select",
		"pcs resource create p_odd ocf:p:odd mode=select \\e\n  op monitor interval=10s timeout=20s",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "Deutsch") {
		t.Errorf("page shows the German description, want the English one:\n%s", page)
	}
	if strings.Contains(page, "params old") || strings.Contains(page, "old=") {
		t.Errorf("a deprecated parameter appears in an example:\n%s", page)
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		args      []string
		code      int
		reason    string // the error must contain it
	}{
		{"no date", `<resource-agent name="a"/>`, nil, 2, "-date"},
		{"bad date", `<resource-agent name="a"/>`, []string{"-date", "03/12/2026"}, 2, "YYYY-MM-DD"},
		{"two files", "", []string{"-date", "2026-01-02", "a.xml", "b.xml"}, 2, "at most one"},
		{"missing file", "", []string{"-date", "2026-01-02", "testdata/none.xml"}, 1, "none.xml"},
		{"not xml", "hello", []string{"-date", "2026-01-02"}, 1, "meta-data"},
		{"other root", `<resource name="a"/>`, []string{"-date", "2026-01-02"}, 1, "resource-agent"},
		{"no name", `<resource-agent/>`, []string{"-date", "2026-01-02"}, 1, "not a file name"},
		{"path as name", `<resource-agent name="../x"/>`, []string{"-date", "2026-01-02"}, 1, "not a file name"},
		{"nameless parameter", `<resource-agent name="a"><parameters><parameter/></parameters></resource-agent>`,
			[]string{"-date", "2026-01-02"}, 1, "parameter has no name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := run(tc.args, strings.NewReader(tc.doc), &out, &errs)
			if code != tc.code || !strings.Contains(errs.String(), tc.reason) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errs.String(), tc.code, tc.reason)
			}
			if out.Len() > 0 {
				t.Errorf("wrote a page on bad input: %q", out.String())
			}
		})
	}
}

func TestWritesFile(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "a.7")
	var out, errs bytes.Buffer
	code := run([]string{"-date", "2026-01-02", "-o", dst}, strings.NewReader(`<resource-agent name="a"/>`), &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	got, err := os.ReadFile(dst)
	if err != nil || !strings.HasPrefix(string(got), `.\" Generated by ocfman`) {
		t.Errorf("page file: %v %q", err, got)
	}
	if out.Len() > 0 {
		t.Errorf("wrote to stdout with -o: %q", out.String())
	}
}
