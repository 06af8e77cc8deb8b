#!/usr/bin/env bash
# Builds nfpm, the packager pinned by packaging/tools (a module of its own, so
# nfpm's dependencies never enter the project's go.mod), and caches it keyed
# by the sha256 of packaging/tools/go.sum (see testcluster/scripts/tool-cache.sh).
# Prints the binary's path as the last line on stdout; everything else goes
# to stderr. A cached binary costs one checksum; a cold build takes about a
# minute on 2 cores. Concurrent runs serialize on a lock, so only one of them
# builds.
#
# Usage: build-nfpm.sh
# Environment: HAFW_CACHE_DIR (default /var/cache/ha-framework, or
# ~/.cache/ha-framework when that is not writable), HAFW_NFPM_BUILD_TIMEOUT
# (seconds to wait for another run's build, default 600), GO (default go).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly TOOL_SCRIPT=build-nfpm.sh
# shellcheck source=testcluster/scripts/tool-cache.sh
. "${HERE}/../testcluster/scripts/tool-cache.sh"

# nfpm --version must tell which release made a package.
nfpm_is() { "$1" --version 2>&1 | grep -qF "${2#v}"; }

# The version is stamped as nfpm's own release build does.
build_tool nfpm "${HERE}/tools" github.com/goreleaser/nfpm/v2 github.com/goreleaser/nfpm/v2/cmd/nfpm \
	'-s -w -X main.version={version}' "${HAFW_NFPM_BUILD_TIMEOUT:-600}" "about a minute" nfpm_is
