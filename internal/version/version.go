// Package version is the release version every agent reports, and the
// commit it was built from.
package version

import (
	_ "embed"
	"strings"
)

//go:embed VERSION
var release string

// Version is the release version, shown in each agent's meta-data.
var Version = strings.TrimSpace(release)

// Commit is the source revision, stamped by the build
// (-ldflags "-X github.com/ha-framework/ha-framework/internal/version.Commit=...").
var Commit = "unknown"
