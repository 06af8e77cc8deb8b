package ocftest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SecretExposures lists the places where secret shows and must not,
// after an agent ran with it (a token, a key, a password read from a
// file): the argv or environment of any process on the machine (a
// daemon the agent started, a helper still running), the output of any
// of results, any of logs (log and trace files: their content, whatever
// their mode), and any file under dirs (state and configuration the
// agent wrote) that holds the secret and is readable or writable by
// anyone but its owner (mode wider than 0600). Files and processes that
// vanish while they are read are skipped.
//
// Call it while the agent's daemons run, with a secret no other process
// on the machine can hold (a random one); nil means none of those places
// shows it. Each entry says where, never the secret.
func SecretExposures(secret string, results []Result, logs []string, dirs []string) []string {
	if secret == "" {
		return []string{"SecretExposures: an empty secret is found everywhere; pass the secret itself"}
	}
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		for _, f := range []string{"cmdline", "environ"} {
			data, err := os.ReadFile(filepath.Join(p, f))
			if err != nil || !strings.Contains(string(data), secret) {
				continue
			}
			cmd, _ := os.ReadFile(filepath.Join(p, "cmdline"))
			what := "argv"
			if f == "environ" {
				what = "environment"
			}
			out = append(out, fmt.Sprintf("process %s (%s): %s", filepath.Base(p), clip(strings.ReplaceAll(string(cmd), "\x00", " "), secret), what))
		}
	}
	for i, r := range results {
		if strings.Contains(r.Stdout, secret) || strings.Contains(r.Stderr, secret) || strings.Contains(r.Reason, secret) {
			out = append(out, fmt.Sprintf("output of action %d", i))
		}
	}
	for _, f := range logs {
		if data, err := os.ReadFile(f); err == nil && strings.Contains(string(data), secret) {
			out = append(out, "log "+f)
		}
	}
	for _, dir := range dirs {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil || info.Mode().Perm()&0o077 == 0 {
				return nil
			}
			if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), secret) {
				out = append(out, fmt.Sprintf("file %s (mode %04o)", path, info.Mode().Perm()))
			}
			return nil
		})
	}
	return out
}

// clip shortens a command line for a report and hides the secret in it.
func clip(cmd, secret string) string {
	cmd = strings.ReplaceAll(strings.TrimSpace(cmd), secret, "<secret>")
	if len(cmd) > 80 {
		cmd = cmd[:80] + "..."
	}
	return cmd
}
