#!/usr/bin/env bash
# Builds nfpm, the packager pinned by packaging/tools (a module of its own, so
# nfpm's dependencies never enter the project's go.mod), and caches it keyed
# by the sha256 of packaging/tools/go.sum. Prints the binary's path as the
# last line on stdout; everything else goes to stderr. A cached binary costs
# one checksum; a cold build takes about a minute on 2 cores. Concurrent runs
# serialize on a lock, so only one of them builds.
#
# Usage: build-nfpm.sh
# Environment: HAFW_CACHE_DIR (default /var/cache/ha-framework, or
# ~/.cache/ha-framework when that is not writable), HAFW_NFPM_BUILD_TIMEOUT
# (seconds to wait for another run's build, default 600), GO (default go).
set -euo pipefail

TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")/tools" && pwd)
readonly TOOLS
readonly GO=${GO:-go}
readonly LOCK_TIMEOUT=${HAFW_NFPM_BUILD_TIMEOUT:-600}

log() { printf 'build-nfpm.sh: %s\n' "$*" >&2; }
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

# The version go.mod pins, e.g. v2.48.0.
pinned_version() {
	awk '$1 == "require" && $2 == "github.com/goreleaser/nfpm/v2" { print $3; exit }
		$1 == "github.com/goreleaser/nfpm/v2" && $2 ~ /^v/ { print $2; exit }' "${TOOLS}/go.mod"
}

main() {
	local root key dir bin want tmp start
	[[ -f ${TOOLS}/go.sum ]] || die "${TOOLS}/go.sum is missing"
	want=$(pinned_version)
	[[ -n ${want} ]] || die "no github.com/goreleaser/nfpm/v2 requirement in ${TOOLS}/go.mod"
	root=$(cache_root)
	key=$(sha256sum "${TOOLS}/go.sum" | cut -c1-16)
	dir=${root}/nfpm-${key}
	bin=${dir}/nfpm

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

	command -v "${GO}" >/dev/null || die "${GO} not found: install Go to build nfpm"
	tmp=$(mktemp "${dir}/nfpm.XXXXXX")
	trap 'rm -f "${tmp}"' EXIT
	log "building nfpm ${want} into ${bin} (cold: about a minute)"
	start=${SECONDS}
	# -mod=readonly: go.sum is committed and verified; a build never rewrites it.
	# The version is stamped as nfpm's own release build does, so that
	# nfpm --version tells which one made a package.
	(cd "${TOOLS}" && GOWORK=off CGO_ENABLED=0 "${GO}" build -mod=readonly -trimpath \
		-ldflags="-s -w -X main.version=${want#v}" -o "${tmp}" github.com/goreleaser/nfpm/v2/cmd/nfpm) >&2 ||
		die "go build github.com/goreleaser/nfpm/v2/cmd/nfpm failed"
	"${tmp}" --version 2>&1 | grep -qF "${want#v}" ||
		die "built binary does not report version ${want#v}"
	chmod 0755 "${tmp}"
	mv -f "${tmp}" "${bin}"
	trap - EXIT
	log "built nfpm ${want} in $((SECONDS - start))s"
	printf '%s\n' "${bin}"
}

main "$@"
