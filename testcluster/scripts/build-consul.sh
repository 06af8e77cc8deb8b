#!/usr/bin/env bash
# Builds the real Consul binary pinned by testcluster/tools (a module of its
# own, so Consul's dependencies never enter the project's go.mod) and caches it,
# keyed by the sha256 of testcluster/tools/go.sum (see tool-cache.sh). Prints
# the binary's path as the last line on stdout; everything else goes to stderr.
# A cached binary costs one checksum; a cold build takes about 4 minutes on 2
# cores. Concurrent runs serialize on a lock, so only one of them builds.
#
# Usage: build-consul.sh
# Environment: HAFW_CACHE_DIR (default /var/cache/ha-framework, or
# ~/.cache/ha-framework when that is not writable), HAFW_CONSUL_BUILD_TIMEOUT
# (seconds to wait for another run's build, default 1800), GO (default go).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly TOOL_SCRIPT=build-consul.sh
# shellcheck source=testcluster/scripts/tool-cache.sh
. "${HERE}/tool-cache.sh"

# The built binary must report the version go.mod pins, e.g. v1.20.6.
consul_is() { "$1" version | grep -qF "Consul $2"; }

build_tool consul "${HERE}/../tools" github.com/hashicorp/consul github.com/hashicorp/consul \
	'-s -w' "${HAFW_CONSUL_BUILD_TIMEOUT:-1800}" "about 4 minutes" consul_is
