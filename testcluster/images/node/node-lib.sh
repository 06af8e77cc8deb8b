# shellcheck shell=bash
# Node set-up shared by both test-cluster backends: the Docker node's
# entrypoint and the Vagrant node's provision.sh source this file, so a
# container and a VM form the same cluster.

# hafw_corosync_conf CLUSTER "name=ip ..." prints corosync.conf: knet with
# encryption, the nodes in the given order (node ids 1..n), votequorum,
# logs in /var/log/corosync with millisecond time stamps (failover
# timelines are read from them). HAFW_TOKEN_MS sets the totem token; empty
# leaves corosync's default (3000 ms, plus 650 ms per node beyond two).
hafw_corosync_conf() {
	local cluster=$1 pairs=$2 id=0 pair
	cat <<CONF
totem {
    version: 2
    cluster_name: ${cluster}
    transport: knet
    crypto_cipher: aes256
    crypto_hash: sha256
${HAFW_TOKEN_MS:+    token: ${HAFW_TOKEN_MS}
}}
nodelist {
CONF
	for pair in ${pairs}; do
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
    timestamp: hires
}
CONF
}

# hafw_seed_cib writes the test cluster's first CIB unless the node has
# one: a restarted node keeps the CIB it had, as a rebooted machine does.
# No fence device yet (tests add one), no quorum → stop.
hafw_seed_cib() {
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

# hafw_install_agents SRC copies the built agents in SRC (if any) to the
# OCF provider folder, so a node never depends on an older build.
hafw_install_agents() {
	local src=$1 dir=/usr/lib/ocf/resource.d/ha-framework f
	[[ -d ${src} ]] || return 0
	mkdir -p "${dir}"
	for f in "${src}"/*; do
		[[ -f ${f} && -x ${f} ]] && install -m 0755 "${f}" "${dir}/"
	done
	return 0
}

# hafw_install_package DEB installs the project's package when DEB exists,
# as an administrator would (dpkg -i; its Recommends are already in the
# image), unless this version is installed already (a node started again
# keeps what it had, as a rebooted machine does). Fails when DEB exists
# and does not install; returns 1 when there is no DEB.
hafw_install_package() {
	local deb=$1 want have
	[[ -f ${deb} ]] || return 1
	want=$(dpkg-deb -f "${deb}" Version)
	have=$(dpkg-query -W -f='${Status} ${Version}' ha-framework 2>/dev/null || true)
	[[ ${have} == "install ok installed ${want}" ]] && return 0
	dpkg -i "${deb}" >/var/log/hafw-dpkg.log 2>&1 || {
		cat /var/log/hafw-dpkg.log >&2
		exit 1
	}
}

# hafw_start_docker starts the node's own Docker Engine (docker.io from the
# image), so a container a resource runs lives and dies with its node, as
# on a real machine. A container's cgroup mounts are read-only; dockerd
# needs them writable, so each v1 hierarchy is mounted again (CAP_SYS_ADMIN
# is there), and the engine's containers go below the node's own cgroup,
# which the host's engine removes with the node. /var/lib/docker must not
# be on the node's overlay root (the docker backend gives it a volume).
# Waits up to 60 s for the engine to answer; fails otherwise.
hafw_start_docker() {
	local d name opts parent
	command -v dockerd >/dev/null || { echo "dockerd not installed in the node image" >&2; return 1; }
	if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
		mount -o remount,rw /sys/fs/cgroup 2>/dev/null || true
	else
		for d in /sys/fs/cgroup/*/; do
			d=${d%/}
			name=${d##*/}
			[[ -L ${d} ]] && continue # cpu,cpuacct style links
			opts=${name}
			[[ ${name} == systemd ]] && opts=none,name=systemd
			if ! touch "${d}/.hafw-rw" 2>/dev/null; then
				umount "${d}" && mount -t cgroup -o "${opts}" cgroup "${d}"
			fi
			rm -f "${d}/.hafw-rw"
		done
	fi
	parent=$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)
	dockerd ${parent:+--cgroup-parent="${parent%/}/engine"} >>/var/log/dockerd.log 2>&1 &
	for _ in $(seq 1 60); do
		docker version >/dev/null 2>&1 && return 0
		sleep 1
	done
	echo "dockerd did not answer within 60 s:" >&2
	tail -n 20 /var/log/dockerd.log >&2
	return 1
}

# hafw_pacemaker_authkey SRC installs the cluster's Pacemaker Remote key
# (a file shared by all nodes, as the corosync key is) where
# pacemaker-remoted and the cluster nodes' controllers (user hacluster)
# read it, when SRC exists.
hafw_pacemaker_authkey() {
	local src=$1
	[[ -s ${src} ]] || return 0
	install -d -m 0750 -o root -g haclient /etc/pacemaker
	install -m 0640 -o root -g haclient "${src}" /etc/pacemaker/authkey
}
