package nginxconf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ha-framework/ha-framework/ocf/process"
)

// Debian's nginx takes the Lua module as dynamic modules from here;
// OpenResty has it built in.
var (
	moduleDir  = "/usr/lib/nginx/modules"
	luaModules = []string{"ndk_http_module.so", "ngx_http_lua_module.so"}
	cpathGlobs = []string{"/usr/lib/*-linux-gnu/lua/5.1", "/usr/lib64/lua/5.1", "/usr/local/lib/lua/5.1", "/usr/local/openresty/lualib"}
)

// Lua is how a binary gets Lua: the load_module lines it needs (none when
// built in) and the C module directories for luaossl and cjson.
type Lua struct {
	LoadModules []string
	CPath       []string
}

// DetectLua finds out, by asking binary to test minimal configurations in
// scratch (a directory it may write), whether it has the Lua module built
// in or needs the dynamic modules loaded.
//
// Return values: the result; an error carrying nginx's complaint when
// neither works (the Lua module is not installed on this node).
func DetectLua(ctx context.Context, binary, scratch string) (Lua, error) {
	var l Lua
	for _, g := range cpathGlobs {
		m, _ := filepath.Glob(filepath.Join(g, "_openssl.so"))
		for _, f := range m {
			l.CPath = append(l.CPath, filepath.Dir(f))
		}
	}
	var mods []string
	for _, m := range luaModules {
		mods = append(mods, filepath.Join(moduleDir, m))
	}
	var last error
	for _, load := range [][]string{nil, mods} {
		if load != nil {
			if _, err := os.Stat(load[1]); err != nil {
				break
			}
		}
		conf := ""
		for _, m := range load {
			conf += "load_module " + m + ";\n"
		}
		conf += "error_log " + filepath.Join(scratch, "detect.log") + ";\npid " + filepath.Join(scratch, "detect.pid") +
			";\nevents {}\nhttp { init_by_lua_block { } }\n"
		f := filepath.Join(scratch, "detect.conf")
		if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
			return l, err
		}
		_, err := process.Run(ctx, binary, "-t", "-q", "-p", scratch, "-e", filepath.Join(scratch, "detect.log"), "-c", f)
		_ = os.Remove(f)
		if err == nil {
			l.LoadModules = load
			return l, nil
		}
		last = err
	}
	var ee *process.ExitError
	if errors.As(last, &ee) {
		return l, fmt.Errorf("%s has no Lua module (install libnginx-mod-http-lua, or use openresty): %s", binary, process.FirstLine(ee.Stderr))
	}
	return l, fmt.Errorf("%s has no Lua module (install libnginx-mod-http-lua, or use openresty): %v", binary, last)
}
