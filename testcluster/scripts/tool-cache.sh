# shellcheck shell=bash
# Builds a Go tool pinned by a tools module of its own (so its dependencies
# never enter the project's go.mod) and caches the binary, keyed by the
# sha256 of that module's go.sum; sourced by build-consul.sh and
# packaging/build-nfpm.sh. A cached binary costs one checksum. Concurrent
# runs serialize on a lock, so only one of them builds; a finished binary is
# only ever renamed into place.
#
# build_tool NAME TOOLS_DIR MODULE PACKAGE LDFLAGS LOCK_TIMEOUT COLD CHECK
#   NAME          the binary's name, and the cache folder's prefix
#   TOOLS_DIR     the tools module (go.mod and go.sum)
#   MODULE        the module go.mod pins; its version is the tool's
#   PACKAGE       the main package to build
#   LDFLAGS       -ldflags; "{version}" becomes the pinned version without "v"
#   LOCK_TIMEOUT  seconds to wait for another run's build
#   COLD          how long a cold build takes, for the progress line
#   CHECK         a command given the new binary and the pinned version
#                 (with "v"); it fails when the binary is not that version
# Prints the binary's path as the last line on stdout; everything else goes
# to stderr. Environment: HAFW_CACHE_DIR (default /var/cache/ha-framework,
# or ~/.cache/ha-framework when that is not writable), GO (default go).

tool_log() { printf '%s: %s\n' "${TOOL_SCRIPT:-build-tool}" "$*" >&2; }
tool_die() { tool_log "$*"; exit 1; }

tool_cache_root() {
	if [[ -n ${HAFW_CACHE_DIR:-} ]]; then
		printf '%s\n' "${HAFW_CACHE_DIR}"
	elif mkdir -p /var/cache/ha-framework 2>/dev/null && [[ -w /var/cache/ha-framework ]]; then
		printf '%s\n' /var/cache/ha-framework
	else
		printf '%s\n' "${XDG_CACHE_HOME:-${HOME}/.cache}/ha-framework"
	fi
}

build_tool() {
	local name=$1 tools=$2 module=$3 package=$4 ldflags=$5 lock_timeout=$6 cold=$7 check=$8
	local go=${GO:-go} want root key dir bin tmp start
	[[ -f ${tools}/go.sum ]] || tool_die "${tools}/go.sum is missing"
	want=$(awk -v m="${module}" '$1 == "require" && $2 == m { print $3; exit }
		$1 == m && $2 ~ /^v/ { print $2; exit }' "${tools}/go.mod")
	[[ -n ${want} ]] || tool_die "no ${module} requirement in ${tools}/go.mod"
	root=$(tool_cache_root)
	key=$(sha256sum "${tools}/go.sum" | cut -c1-16)
	dir=${root}/${name}-${key}
	bin=${dir}/${name}

	if [[ -x ${bin} ]]; then
		printf '%s\n' "${bin}"
		return 0
	fi
	mkdir -p "${dir}"
	exec 9>"${dir}.lock"
	if ! flock -n 9; then
		tool_log "another run is building ${bin}; waiting up to ${lock_timeout}s"
		flock -w "${lock_timeout}" 9 || tool_die "timed out waiting for the lock ${dir}.lock"
	fi
	if [[ -x ${bin} ]]; then # built by the run we waited for
		printf '%s\n' "${bin}"
		return 0
	fi

	command -v "${go}" >/dev/null || tool_die "${go} not found: install Go to build ${name}"
	tmp=$(mktemp "${dir}/${name}.XXXXXX")
	# shellcheck disable=SC2064 # tmp is fixed now
	trap "rm -f '${tmp}'" EXIT
	tool_log "building ${name} ${want} into ${bin} (cold: ${cold})"
	start=${SECONDS}
	# -mod=readonly: go.sum is committed and verified; a build never rewrites it.
	(cd "${tools}" && GOWORK=off CGO_ENABLED=0 "${go}" build -mod=readonly -trimpath \
		-ldflags="${ldflags//\{version\}/${want#v}}" -o "${tmp}" "${package}") >&2 ||
		tool_die "go build ${package} failed"
	"${check}" "${tmp}" "${want}" || tool_die "the built ${name} is not ${want}"
	chmod 0755 "${tmp}"
	mv -f "${tmp}" "${bin}"
	trap - EXIT
	tool_log "built ${name} ${want} in $((SECONDS - start))s"
	printf '%s\n' "${bin}"
}
