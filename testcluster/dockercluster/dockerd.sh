#!/usr/bin/env bash
# Ensures a Docker Engine (Debian's docker.io) answers on this machine, which
# has no systemd as PID 1: starts dockerd in its own session when none runs.
# Extra dockerd flags come from HAFW_DOCKERD_FLAGS (e.g. --iptables=false).
set -euo pipefail

readonly LOG=/var/log/dockerd.log
readonly TIMEOUT=${HAFW_DOCKERD_TIMEOUT:-60}

log() { printf 'dockerd.sh: %s\n' "$*" >&2; }

docker info >/dev/null 2>&1 && { log "dockerd already running"; exit 0; }
command -v dockerd >/dev/null || { log "dockerd missing: apt-get install -y docker.io"; exit 1; }
pgrep -x dockerd >/dev/null && log "a dockerd runs but does not answer yet; waiting"
if ! pgrep -x dockerd >/dev/null; then
	# shellcheck disable=SC2086
	setsid nohup dockerd ${HAFW_DOCKERD_FLAGS:-} </dev/null >>"${LOG}" 2>&1 &
	log "started dockerd (pid $!), log in ${LOG}"
fi
deadline=$((SECONDS + TIMEOUT))
until docker info >/dev/null 2>&1; do
	((SECONDS < deadline)) || { log "dockerd not answering after ${TIMEOUT}s"; tail -n 20 "${LOG}" >&2; exit 1; }
	sleep 1
done
log "dockerd ready after ${SECONDS}s"
