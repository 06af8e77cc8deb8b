#!/usr/bin/env bash
# Builds the hafw-node image from Debian packages, without any registry, in
# two cached steps:
#   hafw-node-base:<hash>  debootstrap of bookworm into a folder, the packages
#                          of testcluster/images/node/packages installed in a
#                          chroot, then docker import (minutes);
#   hafw-node:<hash>       the base plus the entrypoint and node-lib.sh, by a local docker
#                          build (seconds).
# Each tag is a hash of its recipe (the package list and the code that builds
# the base; that plus the entrypoint for the final image), so an unchanged
# recipe reuses the image. Prints the image reference on stdout.
# --remote builds hafw-remote(-base) instead, the image of pacemaker_remote
# nodes, the same way from packages-remote and remote-entrypoint.sh
# (pacemaker-remote conflicts with pacemaker: one image cannot hold both).
# Usage: build-image.sh [--force] [--remote]
set -euo pipefail

readonly HERE=$(cd "$(dirname "$0")" && pwd)
readonly RECIPE=${HERE}/../images/node
readonly CACHE=${HAFW_IMAGE_CACHE:-/var/cache/hafw-node}
readonly SUITE=bookworm

log() { printf 'build-image.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# The mirror apt already uses here; debootstrap gets the same.
mirror() {
	local m
	m=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n1)
	[[ -n ${m} ]] || m=$(awk '$1 == "deb" && $3 == "'"${SUITE}"'" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
	echo "${m:-http://deb.debian.org/debian}"
}

hash() { sha256sum | cut -c1-12; }

build_base() {
	local image=$1 root pkgs
	command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install -y debootstrap"
	mkdir -p "${CACHE}/debs"
	root=$(mktemp -d "${CACHE}/rootfs.XXXXXX")
	# The trap unmounts before removing: never rm -rf across a live /proc.
	trap 'umount -l "'"${root}"'/proc" 2>/dev/null || true; rm -rf --one-file-system "'"${root}"'"' EXIT
	log "debootstrap ${SUITE} from $(mirror)"
	debootstrap --variant=minbase --cache-dir="${CACHE}/debs" "${SUITE}" "${root}" "$(mirror)" >&2
	# No daemon may start inside the chroot (it would run on this host).
	printf '#!/bin/sh\nexit 101\n' >"${root}/usr/sbin/policy-rc.d"
	chmod 0755 "${root}/usr/sbin/policy-rc.d"
	rm -f "${root}/etc/apt/sources.list"
	cp /etc/apt/sources.list.d/debian.sources "${root}/etc/apt/sources.list.d/" 2>/dev/null ||
		echo "deb $(mirror) ${SUITE} main" >"${root}/etc/apt/sources.list"
	cp /etc/apt/apt.conf.d/* "${root}/etc/apt/apt.conf.d/" 2>/dev/null || true
	mount -t proc proc "${root}/proc"
	pkgs=$(grep -v '^#' "${PACKAGES}" | xargs)
	log "installing: ${pkgs}"
	chroot "${root}" apt-get update >&2
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive chroot "${root}" apt-get install -y --no-install-recommends ${pkgs} >&2
	chroot "${root}" apt-get clean
	umount "${root}/proc"
	rm -rf "${root}"/var/lib/apt/lists/* "${root}/etc/corosync/authkey"
	if grep -qx fence-agents "${PACKAGES}"; then
		test -x "${root}/usr/sbin/fence_docker" || die "fence_docker missing from fence-agents"
	fi
	log "importing ${image}"
	tar --numeric-owner -C "${root}" -c . | docker import -m "hafw-node base" - "${image}" >&2
}

build_node() {
	local image=$1 base=$2 ctx
	ctx=$(mktemp -d)
	trap 'rm -rf "'"${ctx}"'"' EXIT
	cp "${ENTRYPOINT}" "${ctx}/entrypoint.sh"
	cp "${RECIPE}/node-lib.sh" "${ctx}/"
	cat >"${ctx}/Dockerfile" <<DOCKERFILE
FROM ${base}
COPY node-lib.sh /usr/local/lib/hafw/node-lib.sh
COPY entrypoint.sh /usr/local/sbin/hafw-entrypoint
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/sbin/hafw-entrypoint"]
DOCKERFILE
	DOCKER_BUILDKIT=0 docker build -q -t "${image}" "${ctx}" >&2
}

# ensure IMAGE FUNCTION ARGS...: builds IMAGE unless it exists (or --force).
ensure() {
	local image=$1 start=${SECONDS}
	shift
	if [[ ${FORCE} == 1 ]] || ! docker image inspect "${image}" >/dev/null 2>&1; then
		("$@" "${image}" "${BASE}")
		log "built ${image} in $((SECONDS - start))s"
	else
		log "reusing ${image}"
	fi
}

docker info >/dev/null 2>&1 || die "dockerd not reachable: run testcluster/dockercluster/dockerd.sh"
FORCE=0
KIND=node
PACKAGES=${RECIPE}/packages
ENTRYPOINT=${RECIPE}/entrypoint.sh
for arg in "$@"; do
	case ${arg} in
	--force) FORCE=1 ;;
	--remote) KIND=remote PACKAGES=${RECIPE}/packages-remote ENTRYPOINT=${RECIPE}/remote-entrypoint.sh ;;
	*) die "usage: build-image.sh [--force] [--remote]" ;;
	esac
done
BASE=hafw-${KIND}-base:$({ cat "${PACKAGES}"; declare -f build_base; echo "${SUITE}"; } | hash)
NODE=hafw-${KIND}:$({ echo "${BASE}"; cat "${ENTRYPOINT}" "${RECIPE}/node-lib.sh"; declare -f build_node; } | hash)
ensure "${BASE}" build_base
ensure "${NODE}" build_node
echo "${NODE}"
