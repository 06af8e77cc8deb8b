package daemon

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/ha-framework/ha-framework/ocf/process"
)

// listening reports whether the process pid, or another member of its
// process group, holds a listening TCP socket on port. A readiness check
// that only connects would be fooled by another program holding the port
// (the daemon itself then fails to bind and exits).
func listening(pid, port int) (bool, error) {
	inodes, err := listenInodes(port)
	if err != nil || len(inodes) == 0 {
		return false, err
	}
	if holds(pid, inodes) {
		return true, nil
	}
	// Its workers may hold the sockets (a master-worker daemon).
	members, err := process.GroupMembers(pid)
	if err != nil {
		return false, err
	}
	for _, m := range members {
		if m != pid && holds(m, inodes) {
			return true, nil
		}
	}
	return false, nil
}

// listenInodes returns the inodes of the TCP sockets listening on port.
func listenInodes(port int) (map[string]bool, error) {
	inodes := map[string]bool{}
	want := fmt.Sprintf(":%04X", port)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue // no IPv6
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !strings.HasSuffix(fields[1], want) {
				continue
			}
			inodes[fields[9]] = true
		}
		f.Close()
	}
	return inodes, nil
}

// holds reports whether process pid has a descriptor on one of the
// socket inodes.
func holds(pid int, inodes map[string]bool) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
			return true
		}
	}
	return false
}
