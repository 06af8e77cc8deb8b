#!/usr/bin/env bash
# Builds the real Consul binary pinned by testcluster/tools (a module of its
# own, so Consul's dependencies never enter the project's go.mod) and caches it,
# keyed by the sha256 of testcluster/tools/go.sum. Prints the binary's path as
# the last line on stdout; everything else goes to stderr. A cached binary
# costs one checksum; a cold build takes about 4 minutes on 2 cores. Concurrent
# runs serialize on a lock, so only one of them builds.
#
# Usage: build-consul.sh
# Environment: HAFW_CACHE_DIR (default /var/cache/ha-framework, or
# ~/.cache/ha-framework when that is not writable), HAFW_CONSUL_BUILD_TIMEOUT
# (seconds to wait for another run's build, default 1800), GO (default go).
set -euo pipefail

TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tools" && pwd)
readonly TOOLS
readonly GO=${GO:-go}
readonly LOCK_TIMEOUT=${HAFW_CONSUL_BUILD_TIMEOUT:-1800}

log() { printf 'build-consul.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

cache_root() {
	if [[ -n ${HAFW_CACHE_DIR:-} ]]; then
		printf '%s\n' "${HAFW_CACHE_DIR}"
	elif mkdir -p /var/cache/ha-framework 2>/dev/null && [[ -w /var/cache/ha-framework ]]; then
		printf '%s\n' /var/cache/ha-framework
	else
		printf '%s\n' "${XDG_CACHE_HOME:-${HOME}/.cache}/ha-framework"
	fi
}

# The version go.mod pins, e.g. v1.20.6: the built binary must report it.
pinned_version() {
	awk '$1 == "require" && $2 == "github.com/hashicorp/consul" { print $3; exit }
		$1 == "github.com/hashicorp/consul" && $2 ~ /^v/ { print $2; exit }' "${TOOLS}/go.mod"
}

main() {
	local root key dir bin want tmp start
	[[ -f ${TOOLS}/go.sum ]] || die "${TOOLS}/go.sum is missing"
	want=$(pinned_version)
	[[ -n ${want} ]] || die "no github.com/hashicorp/consul requirement in ${TOOLS}/go.mod"
	root=$(cache_root)
	key=$(sha256sum "${TOOLS}/go.sum" | cut -c1-16)
	dir=${root}/consul-${key}
	bin=${dir}/consul

	# Fast path: a finished binary is only ever renamed into place.
	if [[ -x ${bin} ]]; then
		printf '%s\n' "${bin}"
		return 0
	fi

	mkdir -p "${dir}"
	exec 9>"${dir}.lock"
	if ! flock -n 9; then
		log "another run is building ${bin}; waiting up to ${LOCK_TIMEOUT}s"
		flock -w "${LOCK_TIMEOUT}" 9 || die "timed out waiting for the lock ${dir}.lock"
	fi
	if [[ -x ${bin} ]]; then # built by the run we waited for
		printf '%s\n' "${bin}"
		return 0
	fi

	command -v "${GO}" >/dev/null || die "${GO} not found: install Go to build consul"
	tmp=$(mktemp "${dir}/consul.XXXXXX")
	trap 'rm -f "${tmp}"' EXIT
	log "building consul ${want} into ${bin} (cold: about 4 minutes)"
	start=${SECONDS}
	# -mod=readonly: go.sum is committed and verified; a build never rewrites it.
	(cd "${TOOLS}" && GOWORK=off CGO_ENABLED=0 "${GO}" build -mod=readonly -trimpath \
		-ldflags='-s -w' -o "${tmp}" github.com/hashicorp/consul) >&2 ||
		die "go build github.com/hashicorp/consul failed"
	"${tmp}" version | grep -qF "Consul ${want}" ||
		die "built binary reports '$("${tmp}" version | head -n1)', want Consul ${want}"
	chmod 0755 "${tmp}"
	mv -f "${tmp}" "${bin}"
	trap - EXIT
	log "built consul ${want} in $((SECONDS - start))s"
	printf '%s\n' "${bin}"
}

main "$@"
