#!/bin/bash
# Runs as root inside each node (Vagrant shell provisioner): installs the
# agents uploaded to /tmp/hafw/bin, the shared corosync key, writes
# corosync.conf for all nodes, seeds the CIB and starts corosync + pacemaker.
# Same cluster settings as the Docker node (images/node/entrypoint.sh).
# Usage: provision.sh CLUSTER "name=ip name=ip ..." NAME IP MAC
set -euo pipefail

readonly CLUSTER=$1 NODES=$2 NAME=$3 IP=$4 MAC=$5 UP=/tmp/hafw
log() { printf 'provision: %s\n' "$*"; }

# Hostname (corosync/pacemaker node name) and the cluster address, done here
# rather than by Vagrant (see the Vagrantfile).
hostnamectl set-hostname "${NAME}"
printf '[Match]\nMACAddress=%s\n\n[Network]\nAddress=%s/24\n' "${MAC}" "${IP}" \
	>/etc/systemd/network/50-hafw-cluster.network
networkctl reload
for _ in $(seq 1 30); do
	ip -o -4 addr show | grep -q " ${IP}/" && break
	sleep 1
done
ip -o -4 addr show | grep -q " ${IP}/" || { log "no ${IP} on any interface"; ip addr; exit 1; }

# Names of all nodes (Vagrant maps only a node's own hostname).
sed -i '/# hafw-node$/d' /etc/hosts
for pair in ${NODES}; do
	printf '%s\t%s # hafw-node\n' "${pair#*=}" "${pair%%=*}" >>/etc/hosts
done
# No name of this node on loopback (the box has "127.0.1.1 hafw-box").
sed -i '/^127\.0\.1\.1[[:space:]]/d' /etc/hosts

install -m 0400 -o root -g root "${UP}/authkey" /etc/corosync/authkey

dir=/usr/lib/ocf/resource.d/ha-framework
mkdir -p "${dir}"
if [[ -d ${UP}/bin ]]; then
	for f in "${UP}"/bin/*; do
		[[ -f ${f} && -x ${f} ]] && install -m 0755 "${f}" "${dir}/"
	done
fi
log "agents: $(ls "${dir}" | tr '\n' ' ')"

id=0
{
	cat <<CONF
totem {
    version: 2
    cluster_name: ${CLUSTER}
    transport: knet
    crypto_cipher: aes256
    crypto_hash: sha256
    token: 3000
}
nodelist {
CONF
	for pair in ${NODES}; do
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
} >/etc/corosync/corosync.conf.new
mv -f /etc/corosync/corosync.conf.new /etc/corosync/corosync.conf

# A fresh CIB with the test cluster's options (no fence device yet).
cib=/var/lib/pacemaker/cib/cib.xml
if [[ ! -e ${cib} ]]; then
	tmp=$(mktemp "${cib}.XXXXXX")
	cibadmin --empty >"${tmp}"
	CIB_file=${tmp} crm_attribute -t crm_config -n dc-deadtime -v 5s
	CIB_file=${tmp} crm_attribute -t crm_config -n stonith-enabled -v false
	CIB_file=${tmp} crm_attribute -t crm_config -n no-quorum-policy -v stop
	chown hacluster:haclient "${tmp}"
	mv -f "${tmp}" "${cib}"
fi

# Enabled by hand: `systemctl enable` goes through the SysV helpers of these
# packages and reloads systemd several times (~30 s under TCG).
for svc in corosync pacemaker; do
	ln -sf "/lib/systemd/system/${svc}.service" "/etc/systemd/system/multi-user.target.wants/${svc}.service"
done
systemctl restart corosync
systemctl start pacemaker
log "corosync and pacemaker started on $(hostname)"
rm -rf "${UP}" # uploads; a re-provision uploads them again
