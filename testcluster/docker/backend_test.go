package dockercluster

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCapsNotBounded(t *testing.T) {
	// 0x1fffeffffff: every capability up to 40 except 24 (CAP_SYS_RESOURCE),
	// the bounding set of the machine where --privileged fails.
	got := capsNotIn(0x000001fffeffffff)
	if diff := cmp.Diff([]string{"SYS_RESOURCE"}, got); diff != "" {
		t.Errorf("capsNotIn (-want +got):\n%s", diff)
	}
}
