#!/bin/bash
# PID 1 of a hafw-node container: writes corosync.conf from the environment,
# starts corosync and pacemakerd as its children, and stays up until stopped.
#   HAFW_CLUSTER  cluster name
#   HAFW_NODES    space-separated name=ip pairs, in node id order
#   /hafw/authkey  the cluster's shared corosync key, mounted read-only
#   /hafw/bin      the built agents, mounted read-only (optional)
#   /hafw/docker.sock, /hafw/tls, HAFW_FENCE_PORT  for fence_docker (optional):
#                  a TLS endpoint on 127.0.0.1 in front of the host's Docker
#                  socket, since fence_docker speaks HTTPS only
set -euo pipefail

log() { printf 'entrypoint: %s\n' "$*"; }

write_conf() {
	local id=0 pair
	{
		cat <<CONF
totem {
    version: 2
    cluster_name: ${HAFW_CLUSTER}
    transport: knet
    crypto_cipher: aes256
    crypto_hash: sha256
    token: 3000
}
nodelist {
CONF
		for pair in ${HAFW_NODES}; do
			id=$((id + 1))
			printf '    node {\n        ring0_addr: %s\n        name: %s\n        nodeid: %d\n    }\n' \
				"${pair#*=}" "${pair%%=*}" "${id}"
		done
		cat <<CONF
}
quorum {
    provider: corosync_votequorum
}
logging {
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
    to_syslog: no
    timestamp: on
}
CONF
	} >/etc/corosync/corosync.conf
}

# Seeded once per container: a restart (docker restart, fencing "reboot")
# keeps the CIB it already has, as a rebooted node would.
seed_cib() {
	local cib=/var/lib/pacemaker/cib/cib.xml tmp
	[[ -e ${cib} ]] && return 0
	tmp=$(mktemp "${cib}.XXXXXX")
	cibadmin --empty >"${tmp}"
	CIB_file=${tmp} crm_attribute -t crm_config -n dc-deadtime -v 5s
	CIB_file=${tmp} crm_attribute -t crm_config -n stonith-enabled -v false
	CIB_file=${tmp} crm_attribute -t crm_config -n no-quorum-policy -v stop
	chown hacluster:haclient "${tmp}"
	mv -f "${tmp}" "${cib}"
}

# Agents are copied from a read-only mount of the freshly built bin/, so the
# image never depends on the project's code.
install_agents() {
	local dir=/usr/lib/ocf/resource.d/ha-framework f
	[[ -d /hafw/bin ]] || return 0
	mkdir -p "${dir}"
	for f in /hafw/bin/*; do
		[[ -f ${f} && -x ${f} ]] && install -m 0755 "${f}" "${dir}/"
	done
	return 0
}

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
mkdir -p /var/log/corosync /var/log/pacemaker /run/resource-agents /run/crm /run/lock
install_agents
write_conf
seed_cib
trap stop TERM INT
if [[ -S /hafw/docker.sock && -n ${HAFW_FENCE_PORT:-} ]]; then
	socat "OPENSSL-LISTEN:${HAFW_FENCE_PORT},bind=127.0.0.1,reuseaddr,fork,cert=/hafw/tls/server.pem,key=/hafw/tls/server.key,cafile=/hafw/tls/ca.pem,verify=1" \
		UNIX-CONNECT:/hafw/docker.sock >>/var/log/hafw-fence-proxy.log 2>&1 &
fi
# -f: corosync stays in the foreground, a child of this script.
corosync -f >>/var/log/corosync/corosync.out 2>&1 &
for _ in $(seq 1 30); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 1; done
corosync-cfgtool -s >/dev/null 2>&1 || { log "corosync not up"; tail -n 20 /var/log/corosync/corosync.log; exit 1; }
setsid pacemakerd </dev/null >>/var/log/pacemaker/pacemakerd.out 2>&1 &
log "corosync and pacemakerd started on $(uname -n)"
# wait returns on a signal, so the trap runs promptly.
while :; do wait -n || true; sleep 1; done
