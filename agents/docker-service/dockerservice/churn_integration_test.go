//go:build integration

package dockerservice

import (
	"strconv"
	"testing"

	"github.com/ha-framework/ha-framework/ocf"
	"github.com/ha-framework/ha-framework/ocf/ocftest"
)

// TestChurn runs several containers of one node through their whole life
// at the same time on one engine (ocftest.Churn), beside a steady one; at
// the end only the steady container may serve.
func TestChurn(t *testing.T) { forEachEngine(t, testChurn) }

func testChurn(t *testing.T, kind string) {
	const churners, cycles = 4, 3
	d := sharedEngine(t, kind)
	state := t.TempDir() // one HA_RSCTMP, as on one node
	steady := newServiceIn(t, d, state, "hafw-churn-steady-"+kind, imagePlain, nil)
	steady.must(t, "start", nil, ocf.Success)
	t.Cleanup(func() { steady.Run("stop", nil) })
	var churning []*service
	var runners []*ocftest.Runner
	for i := range churners {
		s := newServiceIn(t, d, state, "hafw-churn-"+strconv.Itoa(i)+"-"+kind, imagePlain, nil)
		t.Cleanup(func() { s.Run("stop", nil) })
		churning, runners = append(churning, s), append(runners, s.Runner)
	}
	n := ocftest.Churn(t, steady.Runner, runners, cycles)
	t.Logf("%d containers × %d cycles churned beside a steady one, monitored %d times meanwhile", churners, cycles, n)
	for _, s := range churning {
		if code, err := s.get("/health"); err == nil {
			t.Errorf("%s still answers (%d) after its last stop", s.name, code)
		}
	}
	if code, err := steady.get("/health"); err != nil || code != 200 {
		t.Errorf("the steady container does not serve after the churn: %v %v", code, err)
	}
	steady.must(t, "monitor", map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000", "OCF_CHECK_LEVEL": "10"}, ocf.Success)
}
