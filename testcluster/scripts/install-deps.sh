#!/usr/bin/env bash
# Installs the Debian 12 packages the tests and the demo need.
# Usage: install-deps.sh [EXTRA_PACKAGE...]
# Idempotent: when everything is already installed it touches neither apt nor
# the network, so a second run takes well under a second.
set -euo pipefail

# haproxy is what ocf:ha-framework:haproxy-dynamic runs; docker.io and
# debootstrap build and run the multi-node test clusters; memcached is what
# the daemon agent template (examples/memcached) runs in its tests; gcc and
# libc6-dev give make race the cgo the race detector needs; lintian, rpm and
# rpmlint check the packages (make lint-packages, test-packages); nginx with
# its Lua module, luaossl, cjson and resty-core is what openresty-gateway
# runs, and wrk loads it in make bench; docker.io and podman are the engines
# docker-service's integration tests run against.
readonly BASE_PACKAGES=(
	pacemaker pacemaker-cli-utils corosync pcs crmsh resource-agents
	libxml2-utils haproxy docker.io debootstrap memcached
	gcc libc6-dev lintian rpm rpmlint
	nginx libnginx-mod-http-lua lua-luaossl lua-cjson lua-resty-core wrk
	podman
	docker-registry
)

log() { printf 'install-deps: %s\n' "$*"; }

if [[ ${EUID} -ne 0 ]]; then
	log "must run as root" >&2
	exit 1
fi

packages=("${BASE_PACKAGES[@]}" "$@")
missing=()
for pkg in "${packages[@]}"; do
	# dpkg-query prints nothing (and fails) for a package it has never seen.
	status=$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)
	if [[ ${status} != "install ok installed" ]]; then
		missing+=("${pkg}")
	fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
	log "all ${#packages[@]} packages already installed"
	exit 0
fi

# Without systemd as PID 1, maintainer scripts call invoke-rc.d to start
# corosync/pacemaker right away; a policy-rc.d exiting 101 forbids that, so the
# cluster is only ever started by pacemaker.sh. Keep any policy file we find.
readonly POLICY=/usr/sbin/policy-rc.d
if [[ ! -e ${POLICY} ]]; then
	printf '#!/bin/sh\n# temporary, from install-deps.sh\nexit 101\n' >"${POLICY}"
	chmod 0755 "${POLICY}"
	trap 'rm -f "${POLICY}"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
log "installing: ${missing[*]}"
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
log "installed ${#missing[@]} package(s)"

# docker-registry: the tests start their own on loopback; the package's
# service would listen on every address (:5000) from the next boot on.
if command -v systemctl >/dev/null && systemctl is-enabled docker-registry >/dev/null 2>&1; then
	systemctl disable docker-registry >/dev/null 2>&1 || true
	log "docker-registry.service disabled"
fi
