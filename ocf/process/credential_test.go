package process

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestLookupCredentialFiles resolves accounts every Debian system has in
// /etc/passwd and /etc/group.
func TestLookupCredentialFiles(t *testing.T) {
	ctx := ctxFor(t)
	tests := []struct {
		name, user, group string
		uid, gid          uint32
	}{
		{"user by name", "nobody", "", 65534, 65534},
		{"user by id", "65534", "", 65534, 65534},
		{"user and group", "nobody", "root", 65534, 0},
		{"user and numeric group", "nobody", "4321", 65534, 4321},
		{"unnamed uid with a group", "54321", "nogroup", 54321, 65534},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LookupCredential(ctx, tt.user, tt.group)
			if err != nil {
				t.Fatal(err)
			}
			if c.Uid != tt.uid || c.Gid != tt.gid {
				t.Errorf("LookupCredential(%q, %q) = uid %d gid %d, want %d %d", tt.user, tt.group, c.Uid, c.Gid, tt.uid, tt.gid)
			}
		})
	}
	if c, err := LookupCredential(ctx, "", ""); c != nil || err != nil {
		t.Errorf("LookupCredential(\"\", \"\") = %+v, %v; want nil, nil", c, err)
	}
	c, err := LookupCredential(ctx, "", "nogroup")
	if err != nil || c.Uid != uint32(os.Geteuid()) || c.Gid != 65534 || len(c.Groups) != 0 {
		t.Errorf("group alone = %+v, %v; want this process's uid, gid 65534, no supplementary groups", c, err)
	}
}

func TestLookupCredentialUnknown(t *testing.T) {
	ctx := ctxFor(t)
	tests := []struct {
		user, group string
		want        error
	}{
		{"hafw-no-such-user", "", ErrUnknownUser},
		{"54321", "", ErrUnknownUser}, // no entry, and no group to run with
		{"nobody", "hafw-no-such-group", ErrUnknownGroup},
		{"-s", "", ErrUnknownUser}, // never an option of getent
		{"", "-s", ErrUnknownGroup},
	}
	for _, tt := range tests {
		if c, err := LookupCredential(ctx, tt.user, tt.group); !errors.Is(err, tt.want) {
			t.Errorf("LookupCredential(%q, %q) = %+v, %v; want %v", tt.user, tt.group, c, err, tt.want)
		}
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := getentUser(done, "root"); !errors.Is(err, context.Canceled) {
		t.Errorf("getent with an ended context = %v, want Canceled", err)
	}
}

func TestParseGetent(t *testing.T) {
	a, err := parsePasswd("alice:x:1500:1600:Alice,,,:/home/alice:/bin/bash")
	if err != nil || a.name != "alice" || a.uid != 1500 || a.gid != 1600 {
		t.Errorf("parsePasswd = %+v, %v", a, err)
	}
	for _, bad := range []string{"", "alice", "alice:x:uid:1600", ":x:1:1", "alice:x:1:99999999999"} {
		if a, err := parsePasswd(bad); err == nil {
			t.Errorf("parsePasswd(%q) = %+v, want an error", bad, a)
		}
	}
	groups, err := parseInitgroups("alice                 1600 27 100")
	if err != nil || !cmp.Equal(groups, []uint32{1600, 27, 100}) {
		t.Errorf("parseInitgroups = %v, %v", groups, err)
	}
	if groups, err := parseInitgroups("root   "); err != nil || len(groups) != 0 {
		t.Errorf("parseInitgroups of no groups = %v, %v", groups, err)
	}
	if _, err := parseInitgroups("alice x"); err == nil {
		t.Error("parseInitgroups with a non-numeric gid succeeded")
	}
}

// TestGetentAddedUser adds a user and a group with useradd, as root,
// and resolves them through getent, the path a static agent takes for
// users that NSS serves from elsewhere than /etc/passwd.
func TestGetentAddedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("useradd needs root")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("useradd not installed (apt-get install passwd)")
	}
	ctx := ctxFor(t)
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "hafw" + hex.EncodeToString(b)
	if _, err := Run(ctx, "groupadd", "--system", name+"x"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = Run(context.Background(), "groupdel", name+"x") })
	if _, err := Run(ctx, "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
		"--user-group", "--groups", name+"x", name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = Run(context.Background(), "userdel", name) })

	out, err := Run(ctx, "id", "-u", name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 32)
	out, _ = Run(ctx, "id", "-g", name)
	gid, _ := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 32)
	out, _ = Run(ctx, "getent", "group", name+"x")
	extra, _ := strconv.ParseUint(strings.Split(strings.TrimSpace(string(out)), ":")[2], 10, 32)

	for _, key := range []string{name, strconv.FormatUint(uid, 10)} {
		a, err := getentUser(ctx, key)
		if err != nil {
			t.Fatalf("getentUser(%s): %v", key, err)
		}
		if a.uid != uint32(uid) || a.gid != uint32(gid) || !slices.Contains(a.groups, uint32(extra)) {
			t.Errorf("getentUser(%s) = %+v; want uid %d gid %d with group %d", key, a, uid, gid, extra)
		}
	}
	if g, err := getentGroup(ctx, name+"x"); err != nil || g != uint32(extra) {
		t.Errorf("getentGroup = %d, %v; want %d", g, err, extra)
	}
	c, err := LookupCredential(ctx, name, "")
	if err != nil || c.Uid != uint32(uid) || c.Gid != uint32(gid) || !slices.Contains(c.Groups, uint32(extra)) {
		t.Errorf("LookupCredential(%s) = %+v, %v", name, c, err)
	}
	// The credential works: a command run with it reports the user.
	cmd := exec.Command("/usr/bin/id", "-un")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c}
	if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != name {
		t.Errorf("id -un as the credential = %q, %v", out, err)
	}
}
