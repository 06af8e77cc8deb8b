package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// ErrUnknownUser and ErrUnknownGroup say that a name (or id) is in none
// of the node's user or group databases.
var (
	ErrUnknownUser  = errors.New("unknown user")
	ErrUnknownGroup = errors.New("unknown group")
)

// getentStatusNotFound is getent's exit status for a key that is not in
// the database.
const getentStatusNotFound = 2

// LookupCredential resolves the user and group a daemon should run as
// into a credential for Daemon.Credential (syscall.SysProcAttr). Each may
// be a name or a numeric id; user brings its primary group and its
// supplementary groups, and group, when set, replaces the primary group.
//
// Agents are static binaries, whose os/user reads only /etc/passwd and
// /etc/group. Users and groups that come from elsewhere through NSS
// (LDAP, sssd, systemd's dynamic users) are found by asking getent(1),
// through Run, when os/user finds nothing.
//
// Return values:
//   - (nil, nil): user and group are both "": keep the agent's own
//     identity.
//   - (cred, nil): Uid and Gid set; Groups holds user's supplementary
//     groups (empty for a group alone, which runs the agent's user with
//     that group and no supplementary groups).
//   - (nil, err) with errors.Is(err, ErrUnknownUser): no database knows
//     user, or user is a numeric id without an entry and group is "" (its
//     primary group is then unknown: set group).
//   - (nil, err) with errors.Is(err, ErrUnknownGroup): no database knows
//     group, and it is not a number.
//   - (nil, err) with errors.Is(err, ctx.Err()): ctx ended during a
//     getent lookup.
//   - (nil, err): a database could not be read, or getent failed
//     otherwise.
func LookupCredential(ctx context.Context, userName, groupName string) (*syscall.Credential, error) {
	if userName == "" && groupName == "" {
		return nil, nil
	}
	cred := &syscall.Credential{Uid: uint32(os.Geteuid()), Gid: uint32(os.Getegid()), Groups: []uint32{}}
	if userName != "" {
		u, err := lookupUser(ctx, userName)
		switch {
		case errors.Is(err, ErrUnknownUser) && groupName != "" && isID(userName):
			// A bare uid is fine when the group is given: containers
			// and images often run as ids no database names.
			id, _ := strconv.ParseUint(userName, 10, 32)
			cred.Uid = uint32(id)
		case err != nil:
			return nil, err
		default:
			cred.Uid, cred.Gid, cred.Groups = u.uid, u.gid, u.groups
		}
	}
	if groupName != "" {
		gid, err := lookupGroup(ctx, groupName)
		if err != nil {
			return nil, err
		}
		cred.Gid = gid
	}
	return cred, nil
}

// account is what LookupCredential needs of a user.
type account struct {
	name     string
	uid, gid uint32
	groups   []uint32
}

func isID(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// lookupUser finds name (or a numeric uid) through os/user, then getent.
func lookupUser(ctx context.Context, name string) (account, error) {
	var u *user.User
	var err error
	if isID(name) {
		u, err = user.LookupId(name)
	} else {
		u, err = user.Lookup(name)
	}
	var unknownName user.UnknownUserError
	var unknownID user.UnknownUserIdError
	switch {
	case err == nil:
		a := account{name: u.Username}
		uid, uerr := strconv.ParseUint(u.Uid, 10, 32)
		gid, gerr := strconv.ParseUint(u.Gid, 10, 32)
		if uerr != nil || gerr != nil {
			return account{}, fmt.Errorf("user %s has uid %q and gid %q, not numbers", name, u.Uid, u.Gid)
		}
		a.uid, a.gid = uint32(uid), uint32(gid)
		ids, err := u.GroupIds()
		if err != nil {
			return account{}, fmt.Errorf("groups of user %s: %w", name, err)
		}
		if a.groups, err = parseIDs(ids); err != nil {
			return account{}, fmt.Errorf("groups of user %s: %w", name, err)
		}
		return a, nil
	case errors.As(err, &unknownName), errors.As(err, &unknownID):
		return getentUser(ctx, name)
	default:
		return account{}, fmt.Errorf("looking up user %s: %w", name, err)
	}
}

// lookupGroup finds name (or a numeric gid) through os/user, then
// getent; a number that no database knows is taken as it is.
func lookupGroup(ctx context.Context, name string) (uint32, error) {
	var g *user.Group
	var err error
	if isID(name) {
		g, err = user.LookupGroupId(name)
	} else {
		g, err = user.LookupGroup(name)
	}
	var unknownName user.UnknownGroupError
	var unknownID user.UnknownGroupIdError
	switch {
	case err == nil:
		gid, err := strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("group %s has gid %q, not a number", name, g.Gid)
		}
		return uint32(gid), nil
	case errors.As(err, &unknownName), errors.As(err, &unknownID):
		gid, err := getentGroup(ctx, name)
		if errors.Is(err, ErrUnknownGroup) && isID(name) {
			id, _ := strconv.ParseUint(name, 10, 32)
			return uint32(id), nil
		}
		return gid, err
	default:
		return 0, fmt.Errorf("looking up group %s: %w", name, err)
	}
}

// getent runs getent(1) on database for key and returns its first line.
// A key the database does not hold, or no getent at all, is notFound.
func getent(ctx context.Context, notFound error, database, key string) (string, error) {
	// getent takes options before the database; a key such as "-s" must
	// not be read as one.
	if strings.HasPrefix(key, "-") {
		return "", fmt.Errorf("%w: %s", notFound, key)
	}
	out, err := Run(ctx, "getent", database, key)
	var ee *ExitError
	switch {
	case errors.As(err, &ee) && ee.Status == getentStatusNotFound:
		return "", fmt.Errorf("%w: %s", notFound, key)
	case err != nil && ctx.Err() == nil && !errors.As(err, &ee):
		// getent is not installed: nothing beyond os/user's files to ask.
		return "", fmt.Errorf("%w: %s (and getent could not be run: %v)", notFound, key, err)
	case err != nil:
		return "", err
	}
	return FirstLine(out), nil
}

// getentUser looks name up in the passwd and initgroups databases.
func getentUser(ctx context.Context, name string) (account, error) {
	line, err := getent(ctx, ErrUnknownUser, "passwd", name)
	if err != nil {
		return account{}, err
	}
	a, err := parsePasswd(line)
	if err != nil {
		return account{}, fmt.Errorf("getent passwd %s: %w", name, err)
	}
	// initgroups wants the name, also when name was a uid.
	line, err = getent(ctx, ErrUnknownUser, "initgroups", a.name)
	if err != nil {
		return account{}, err
	}
	if a.groups, err = parseInitgroups(line); err != nil {
		return account{}, fmt.Errorf("getent initgroups %s: %w", a.name, err)
	}
	return a, nil
}

// getentGroup looks name up in the group database.
func getentGroup(ctx context.Context, name string) (uint32, error) {
	line, err := getent(ctx, ErrUnknownGroup, "group", name)
	if err != nil {
		return 0, err
	}
	// name:password:gid:members
	f := strings.Split(line, ":")
	if len(f) < 3 {
		return 0, fmt.Errorf("getent group %s printed %q, not a group entry", name, line)
	}
	gid, err := strconv.ParseUint(f[2], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("getent group %s printed gid %q, not a number", name, f[2])
	}
	return uint32(gid), nil
}

// parsePasswd reads a passwd entry: name:password:uid:gid:gecos:home:shell.
func parsePasswd(line string) (account, error) {
	f := strings.Split(line, ":")
	if len(f) < 4 || f[0] == "" {
		return account{}, fmt.Errorf("%q is not a passwd entry", line)
	}
	uid, uerr := strconv.ParseUint(f[2], 10, 32)
	gid, gerr := strconv.ParseUint(f[3], 10, 32)
	if uerr != nil || gerr != nil {
		return account{}, fmt.Errorf("%q has a uid or gid that is not a number", line)
	}
	return account{name: f[0], uid: uint32(uid), gid: uint32(gid)}, nil
}

// parseInitgroups reads getent initgroups' "name gid gid ..." line.
func parseInitgroups(line string) ([]uint32, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return nil, fmt.Errorf("empty answer")
	}
	return parseIDs(f[1:])
}

func parseIDs(ids []string) ([]uint32, error) {
	out := make([]uint32, 0, len(ids))
	for _, s := range ids {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("group id %q is not a number", s)
		}
		out = append(out, uint32(n))
	}
	return out, nil
}
