package process_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ha-framework/ha-framework/ocf/process"
)

// A daemon agent keeps its log and status in a state directory that only
// root can change, and opens them there without following links a
// less privileged user could have planted.
func ExampleOpenStateDir() {
	base, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(base)

	d, err := process.OpenStateDir(filepath.Join(base, "haproxy-dynamic-web.d"))
	if err != nil {
		fmt.Println(err) // errors.Is(err, process.ErrUnsafeStateDir): refuse to start
		return
	}
	defer d.Close()
	log, err := d.OpenFile("watcher.log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer log.Close()
	fmt.Fprintln(log, "started")
	if err := d.WriteFileAtomic("status.json", []byte(`{"ok":true}`), 0o600); err != nil {
		fmt.Println(err)
		return
	}
	status, err := d.ReadFile("status.json", 1<<20)
	fmt.Println(string(status), err)
	// Output: {"ok":true} <nil>
}
