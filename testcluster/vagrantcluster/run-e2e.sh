#!/usr/bin/env bash
# End-to-end tests on real multi-node Pacemaker clusters of Vagrant/libvirt
# VMs (package vagrantcluster): builds the agents, prepares the host
# (setup.sh: packages, libvirtd) and the box (build-box.sh, cached), then
# runs the e2e tests with HAFW_E2E_BACKEND=vagrant. Extra arguments go to
# go test; without any, all scenarios run (each boots its own 3 VMs, a few
# minutes each under software emulation). Logs of failed tests:
# /tmp/hafw-e2e-logs.
#   run-e2e.sh -run 'TestClusterForms|TestFencing' -v
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "${HERE}/../.." && pwd)
readonly HERE ROOT

log() { printf 'run-e2e.sh: %s\n' "$*" >&2; }

[[ ${EUID} -eq 0 ]] || { log "must run as root (libvirt, networks, the fencing sshd)"; exit 1; }
# Always make: it rebuilds only what changed, and a stale bin/ would test old code.
make -C "${ROOT}" build >/dev/null
"${HERE}/setup.sh"
start=${SECONDS}
"${HERE}/build-box.sh"
log "box $("${HERE}/build-box.sh" name) ready in $((SECONDS - start))s"
cd "${ROOT}"
export HAFW_E2E_BACKEND=vagrant
exec go test -tags e2e -count=1 -timeout 120m "$@" ./testcluster/e2e/...
