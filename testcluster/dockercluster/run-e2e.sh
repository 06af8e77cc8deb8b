#!/usr/bin/env bash
# End-to-end tests on real multi-node Pacemaker clusters in Docker: builds
# the agents and their .deb (make packages), ensures dockerd runs, builds (or
# reuses) the node image, then runs the e2e tests; every node installs the .deb. Extra arguments go to go test
# (e.g. -run TestFencing -v). Logs of failed tests: /tmp/hafw-e2e-logs.
set -euo pipefail

readonly HERE=$(cd "$(dirname "$0")" && pwd)
readonly ROOT=$(cd "${HERE}/../.." && pwd)

log() { printf 'run-e2e.sh: %s\n' "$*" >&2; }

[[ ${EUID} -eq 0 ]] || { log "must run as root (dockerd, debootstrap)"; exit 1; }
# Always make: it rebuilds only what changed, and a stale bin/ would test old
# code. The nodes install the .deb (the package is under test in every
# scenario); HAFW_NODE_DEB set by the caller names another one.
if [[ -z ${HAFW_NODE_DEB:-} ]]; then
	make -C "${ROOT}" packages >/dev/null
	HAFW_NODE_DEB=${ROOT}/dist/ha-framework_$(tr -d '[:space:]' <"${ROOT}/internal/version/VERSION")_amd64.deb
	export HAFW_NODE_DEB
else
	make -C "${ROOT}" build >/dev/null
fi
log "nodes install ${HAFW_NODE_DEB}"
"${HERE}/dockerd.sh"
start=${SECONDS}
HAFW_NODE_IMAGE=$("${HERE}/build-image.sh")
export HAFW_NODE_IMAGE
log "image ${HAFW_NODE_IMAGE} ready in $((SECONDS - start))s"
# The image of pacemaker_remote nodes, for TestRemoteNode only (make
# e2e-remote sets HAFW_E2E_REMOTE=1), built here so that its first build
# (minutes) is not part of the test's time.
if [[ ${HAFW_E2E_REMOTE:-} == 1 ]]; then
	start=${SECONDS}
	HAFW_REMOTE_IMAGE=$("${HERE}/build-image.sh" --remote)
	export HAFW_REMOTE_IMAGE
	log "image ${HAFW_REMOTE_IMAGE} ready in $((SECONDS - start))s"
fi
cd "${ROOT}"
export HAFW_E2E_BACKEND=docker
exec go test -tags e2e -count=1 -timeout 30m "$@" ./testcluster/e2e/...
