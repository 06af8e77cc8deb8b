package strictjson

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckObject(t *testing.T) {
	ok := []string{`{}`, ` {"a": 1, "b": [true, false, null, -0.5e+3, "x\u00e9\n"]} `, `{"a":{"a":{"a":1}}}`, `{"é": "\u20ac"}`, `{"a": 1e-400}`}
	for _, s := range ok {
		if err := CheckObject([]byte(s)); err != nil {
			t.Errorf("%s: %v, want accepted", s, err)
		}
	}
	bad := []string{
		`[]`, `"a"`, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":1}x`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`,
		`{"a":NaN}`, `{"a":Infinity}`, `{"a":0x10}`, `{"a":1e400}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", "{\"a\":\"\t\"}",
		`{"a":'x'}`, `{"a":1,}`, `{a:1}`, `{"a":tru}`, `{"a":"\x"}`, `{"a":[1,]}`,
		strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1),
	}
	for _, s := range bad {
		if err := CheckObject([]byte(s)); err == nil {
			t.Errorf("%q accepted, want refused", s)
		}
	}
}

// FuzzCheckObject: what the strict checker accepts, encoding/json accepts
// too, as an object.
func FuzzCheckObject(f *testing.F) {
	f.Add([]byte(`{"a": [1, "b", {"c": null}]}`))
	f.Add([]byte(`{"a":1,"\u0061":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if CheckObject(data) != nil {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", data, err)
		}
	})
}
