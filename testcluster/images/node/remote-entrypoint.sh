#!/bin/bash
# PID 1 of a hafw-remote container, a pacemaker_remote node: installs the
# cluster's Pacemaker Remote key and the project's agents, starts
# pacemaker-remoted as its child (TCP 3121; the cluster connects to it once
# a full node runs the node's ocf:pacemaker:remote resource), and stays up
# until stopped.
#   /hafw/pacemaker-authkey     the cluster's shared Pacemaker Remote key
#   /hafw/pkg/ha-framework.deb  the project's package (optional)
#   /hafw/bin                   the built agents (used when no package is given)
set -euo pipefail
# shellcheck source=node-lib.sh
. /usr/local/lib/hafw/node-lib.sh

log() { printf 'remote-entrypoint: %s\n' "$*"; }

stop() {
	log "stopping"
	pkill -TERM -x pacemaker-remoted || true
	for _ in $(seq 1 30); do pgrep -x pacemaker-remoted >/dev/null || break; sleep 1; done
	exit 0
}

[[ -s /hafw/pacemaker-authkey ]] || { log "no /hafw/pacemaker-authkey mounted"; exit 1; }
hafw_pacemaker_authkey /hafw/pacemaker-authkey
mkdir -p /var/log/pacemaker /run/resource-agents /run/lock
hafw_install_package /hafw/pkg/ha-framework.deb || hafw_install_agents /hafw/bin
trap stop TERM INT
PCMK_logfile=/var/log/pacemaker/pacemaker.log setsid pacemaker-remoted </dev/null >>/var/log/pacemaker/pacemaker-remoted.out 2>&1 &
log "pacemaker-remoted started on $(uname -n)"
# wait returns on a signal, so the trap runs promptly.
while :; do wait -n || true; sleep 1; done
