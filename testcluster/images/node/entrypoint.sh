#!/bin/bash
# PID 1 of a hafw-node container: writes corosync.conf from the environment,
# starts corosync and pacemakerd as its children, and stays up until stopped.
#   HAFW_CLUSTER  cluster name
#   HAFW_NODES    space-separated name=ip pairs, in node id order
#   /hafw/authkey  the cluster's shared corosync key, mounted read-only
#   /hafw/pacemaker-authkey  the cluster's Pacemaker Remote key (optional), for
#                  connections to pacemaker_remote nodes
#   /hafw/pkg/ha-framework.deb  the project's package, installed with dpkg (optional)
#   /hafw/bin      the built agents, mounted read-only (optional; copied in
#                  when no package is given)
#   HAFW_DOCKER=1  the node runs its own Docker Engine (hafw_start_docker)
#   /hafw/docker.sock, /hafw/tls, HAFW_FENCE_PORT  for fence_docker (optional):
#                  a TLS endpoint on 127.0.0.1 in front of the host's Docker
#                  socket, since fence_docker speaks HTTPS only
set -euo pipefail
# shellcheck source=node-lib.sh
. /usr/local/lib/hafw/node-lib.sh

log() { printf 'entrypoint: %s\n' "$*"; }

stop() {
	log "stopping"
	pkill -TERM -x pacemakerd || true
	for _ in $(seq 1 30); do pgrep -x pacemakerd >/dev/null || break; sleep 1; done
	corosync-cfgtool -H --force >/dev/null 2>&1 || pkill -TERM -x corosync || true
	exit 0
}

: "${HAFW_CLUSTER:?}" "${HAFW_NODES:?}"
[[ -s /hafw/authkey ]] || { log "no /hafw/authkey mounted"; exit 1; }
install -m 0400 /hafw/authkey /etc/corosync/authkey
hafw_pacemaker_authkey /hafw/pacemaker-authkey
mkdir -p /var/log/corosync /var/log/pacemaker /run/resource-agents /run/crm /run/lock
hafw_install_package /hafw/pkg/ha-framework.deb || hafw_install_agents /hafw/bin
hafw_corosync_conf "${HAFW_CLUSTER}" "${HAFW_NODES}" >/etc/corosync/corosync.conf
hafw_seed_cib
trap stop TERM INT
if [[ -S /hafw/docker.sock && -n ${HAFW_FENCE_PORT:-} ]]; then
	socat "OPENSSL-LISTEN:${HAFW_FENCE_PORT},bind=127.0.0.1,reuseaddr,fork,cert=/hafw/tls/server.pem,key=/hafw/tls/server.key,cafile=/hafw/tls/ca.pem,verify=1" \
		UNIX-CONNECT:/hafw/docker.sock >>/var/log/hafw-fence-proxy.log 2>&1 &
fi
if [[ ${HAFW_DOCKER:-} == 1 ]]; then
	hafw_start_docker || exit 1
fi
# -f: corosync stays in the foreground, a child of this script.
corosync -f >>/var/log/corosync/corosync.out 2>&1 &
for _ in $(seq 1 30); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 1; done
corosync-cfgtool -s >/dev/null 2>&1 || { log "corosync not up"; tail -n 20 /var/log/corosync/corosync.log; exit 1; }
setsid pacemakerd </dev/null >>/var/log/pacemaker/pacemakerd.out 2>&1 &
log "corosync and pacemakerd started on $(uname -n)"
# wait returns on a signal, so the trap runs promptly.
while :; do wait -n || true; sleep 1; done
