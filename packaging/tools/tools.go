//go:build tools

// Package tools pins nfpm, the packager of the DEB and RPM packages, in a
// module of its own so that nfpm's dependency graph never enters the
// project's go.mod. packaging/build-nfpm.sh builds and caches it.
package tools

import _ "github.com/goreleaser/nfpm/v2/cmd/nfpm"
