package process

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain",
			data: "4512 (cat) R 4508 4508 3080 0 -1 4194304 102 0 0 0\n",
			want: procStat{state: 'R', ppid: 4508, pgrp: 4508, session: 3080},
		},
		{
			name: "comm with spaces and parentheses",
			data: "77 (a) b) (c d) Z 1 77 70 0 -1\n",
			want: procStat{state: 'Z', ppid: 1, pgrp: 77, session: 70},
		},
		{
			name: "empty comm",
			data: "5 () S 2 0 0 0",
			want: procStat{state: 'S', ppid: 2},
		},
		{name: "no parenthesis", data: "5 cat S 2 0 0", wantErr: true},
		{name: "truncated", data: "5 (cat) S 2 5", wantErr: true},
		{name: "state not a letter", data: "5 (cat) SS 2 5 5", wantErr: true},
		{name: "field not a number", data: "5 (cat) S 2 x 5", wantErr: true},
		{name: "empty", data: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStat(%q) error = %v, want error: %t", tt.data, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(procStat{})); diff != "" {
				t.Errorf("parseStat(%q) mismatch (-want +got):\n%s", tt.data, diff)
			}
		})
	}
}

func TestParsePID(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    int
		wantErr bool
	}{
		{name: "pid and newline", data: "123\n", want: 123},
		{name: "no newline", data: "123", want: 123},
		{name: "white space", data: " \t42 \r\n", want: 42},
		{name: "extra lines ignored", data: "7\n/var/lib/postgresql\n5432\n", want: 7},
		{name: "largest pid", data: "4194304\n", want: 4194304},
		{name: "empty", data: "", wantErr: true},
		{name: "empty first line", data: "\n123\n", wantErr: true},
		{name: "not a number", data: "abc\n", wantErr: true},
		{name: "two numbers", data: "12 34\n", wantErr: true},
		{name: "zero would signal our group", data: "0\n", wantErr: true},
		{name: "minus one would signal everything", data: "-1\n", wantErr: true},
		{name: "negative group", data: "-1234\n", wantErr: true},
		{name: "above pid_max", data: "4194305\n", wantErr: true},
		{name: "overflow", data: "99999999999999999999999\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePID([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parsePID(%q) = %d, %v; want error: %t", tt.data, got, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parsePID(%q) = %d, want %d", tt.data, got, tt.want)
			}
		})
	}
}

func TestExeMatches(t *testing.T) {
	tests := []struct {
		name string
		link string
		want []string
		ok   bool
	}{
		{name: "same path", link: "/usr/sbin/haproxy", want: []string{"/usr/sbin/haproxy"}, ok: true},
		{name: "resolved path", link: "/usr/bin/sleep", want: []string{"/bin/sleep", "/usr/bin/sleep"}, ok: true},
		{name: "deleted by upgrade", link: "/usr/sbin/haproxy (deleted)", want: []string{"/usr/sbin/haproxy", ""}, ok: true},
		{name: "other program", link: "/usr/bin/vim", want: []string{"/usr/sbin/haproxy", "/usr/sbin/haproxy"}},
		{name: "prefix only", link: "/usr/sbin/haproxy2", want: []string{"/usr/sbin/haproxy"}},
		{name: "empty wanted never matches", link: "", want: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exeMatches(tt.link, tt.want...); got != tt.ok {
				t.Errorf("exeMatches(%q, %q) = %t, want %t", tt.link, tt.want, got, tt.ok)
			}
		})
	}
}

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string
	}{
		{name: "arguments", data: "/bin/sleep\x0030\x00", want: []string{"/bin/sleep", "30"}},
		{name: "empty argument kept", data: "sh\x00-c\x00\x00x\x00", want: []string{"sh", "-c", "", "x"}},
		{name: "rewritten argv", data: "nginx: master process /usr/sbin/nginx\x00", want: []string{"nginx: master process /usr/sbin/nginx"}},
		{name: "kernel thread or zombie", data: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, parseCmdline([]byte(tt.data))); diff != "" {
				t.Errorf("parseCmdline(%q) mismatch (-want +got):\n%s", tt.data, diff)
			}
		})
	}
}

func TestArgv0Matches(t *testing.T) {
	tests := []struct {
		argv0 string
		want  []string
		ok    bool
	}{
		{argv0: "/usr/sbin/haproxy", want: []string{"/usr/sbin/haproxy", ""}, ok: true},
		{argv0: "haproxy", want: []string{"/usr/sbin/haproxy"}, ok: true},
		{argv0: "/opt/haproxy", want: []string{"/usr/sbin/haproxy"}},
		{argv0: "./haproxy", want: []string{"/usr/sbin/haproxy"}},
		{argv0: "vim", want: []string{"/usr/sbin/haproxy"}},
	}
	for _, tt := range tests {
		if got := argv0Matches(tt.argv0, tt.want...); got != tt.ok {
			t.Errorf("argv0Matches(%q, %q) = %t, want %t", tt.argv0, tt.want, got, tt.ok)
		}
	}
}

func TestAlive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pid     func(t *testing.T) int
		want    bool
		wantErr bool
	}{
		{name: "self", pid: func(*testing.T) int { return os.Getpid() }, want: true},
		{name: "init, owned by root or not", pid: func(*testing.T) int { return 1 }, want: true},
		{name: "running daemon", pid: startSleep, want: true},
		{name: "zombie", pid: zombiePID, want: false},
		{name: "reaped", pid: deadPID, want: false},
		{name: "zero", pid: func(*testing.T) int { return 0 }, wantErr: true},
		{name: "negative", pid: func(*testing.T) int { return -1 }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pid := tt.pid(t)
			got, err := Alive(pid)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Alive(%d) error = %v, want error: %t", pid, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Alive(%d) = %t, want %t", pid, got, tt.want)
			}
		})
	}
}
