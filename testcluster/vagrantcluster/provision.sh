#!/bin/bash
# Runs as root inside each node (Vagrant shell provisioner): installs the
# agents uploaded to /tmp/hafw/bin, the shared corosync key, writes
# corosync.conf for all nodes, seeds the CIB and starts corosync + pacemaker.
# corosync.conf, the CIB seed and the agent install come from node-lib.sh
# (uploaded to /tmp/hafw), shared with the Docker node's entrypoint.
# Usage: provision.sh CLUSTER "name=ip name=ip ..." NAME IP MAC
set -euo pipefail

readonly CLUSTER=$1 NODES=$2 NAME=$3 IP=$4 MAC=$5 UP=/tmp/hafw
log() { printf 'provision: %s\n' "$*"; }
# shellcheck source-path=SCRIPTDIR source=../images/node/node-lib.sh
. "${UP}/node-lib.sh"

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

hafw_install_agents "${UP}/bin"
log "agents: $(ls /usr/lib/ocf/resource.d/ha-framework 2>/dev/null | tr '\n' ' ')"

hafw_corosync_conf "${CLUSTER}" "${NODES}" >/etc/corosync/corosync.conf.new
mv -f /etc/corosync/corosync.conf.new /etc/corosync/corosync.conf
hafw_seed_cib

# Enabled by hand: `systemctl enable` goes through the SysV helpers of these
# packages and reloads systemd several times (~30 s under TCG).
for svc in corosync pacemaker; do
	ln -sf "/lib/systemd/system/${svc}.service" "/etc/systemd/system/multi-user.target.wants/${svc}.service"
done
systemctl restart corosync
systemctl start pacemaker
log "corosync and pacemaker started on $(hostname)"
rm -rf "${UP}" # uploads; a re-provision uploads them again
