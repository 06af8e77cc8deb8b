#!/usr/bin/env bash
# Host setup for the Vagrant/libvirt test cluster on a Debian 12 host without
# systemd as PID 1 (why each step is needed: NOTES.md).
# Usage: setup.sh [install|start|stop]   (default: install + start)
#   install  Debian packages (vagrant, vagrant-libvirt, libvirt, qemu, mmdebstrap …)
#   start    /dev/kvm permission fix, virtlogd + libvirtd by hand, default storage pool
#   stop     stops what `start` started (by pid file), removes leftover LIBVIRT_* rules
set -euo pipefail

readonly STATE=${HAFW_VAGRANT_STATE:-/var/lib/hafw-vagrant}
readonly RUN=/run/hafw-vagrant
readonly POOL_DIR=/var/lib/libvirt/images

log() { printf 'setup.sh: %s\n' "$*"; }
die() { log "$*" >&2; exit 1; }

# poll SECONDS CMD...
poll() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 1
	done
}

PACKAGES=(
	libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu
	qemu-system-x86 qemu-utils
	vagrant vagrant-libvirt
	mmdebstrap dnsmasq-base openssh-client rsync fdisk e2fsprogs
	# The per-cluster sshd on the host that fence_virsh in the nodes logs in to.
	openssh-server
	util-linux libarchive-tools
)

cmd_install() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "${p}" 2>/dev/null | grep -q 'ok installed' || missing+=("${p}")
	done
	if ((${#missing[@]} == 0)); then
		log "packages already installed"
		return 0
	fi
	log "installing: ${missing[*]}"
	apt-get update -q
	# --no-install-recommends: avoids ~200 packages (libguestfs …) not needed here.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

cmd_start() {
	mkdir -p "${RUN}" "${STATE}"
	# With /dev/kvm root-only (no udev) libvirt re-probes QEMU on every API
	# call (vagrant up 6 min instead of 2). Debian's udev rule would set this.
	# KVM itself is not used (it is PVM here; stock kernels crash) — see Vagrantfile.
	if [[ -c /dev/kvm ]] && getent group kvm >/dev/null; then
		if [[ $(stat -c '%G %a' /dev/kvm) != 'kvm 660' ]]; then
			stat -c '%U:%G %a' /dev/kvm >"${STATE}/kvm-perm.orig"
			chgrp kvm /dev/kvm
			chmod 660 /dev/kvm
			log "/dev/kvm set to root:kvm 0660 (was $(cat "${STATE}/kvm-perm.orig"))"
		fi
	fi
	mkdir -p /run/libvirt /var/log/libvirt /var/lib/libvirt
	if ! pgrep -x virtlogd >/dev/null; then
		virtlogd -d -p "${RUN}/virtlogd.pid"
		log "virtlogd started"
	fi
	if ! pgrep -x libvirtd >/dev/null; then
		libvirtd -d -p "${RUN}/libvirtd.pid" -l 2>/dev/null || libvirtd -d -p "${RUN}/libvirtd.pid"
		log "libvirtd started"
	fi
	poll 60 virsh -c qemu:///system version || die "libvirtd not answering; see /var/log/libvirt/"
	if ! virsh -q pool-info default >/dev/null 2>&1; then
		mkdir -p "${POOL_DIR}"
		virsh -q pool-define-as default dir --target "${POOL_DIR}" >/dev/null
		virsh -q pool-autostart default >/dev/null || true
		log "storage pool default defined (${POOL_DIR})"
	fi
	[[ $(virsh pool-info default | awk '/^State:/{print $2}') == running ]] || virsh -q pool-start default >/dev/null
	log "libvirt ready"
}

cmd_stop() {
	local n
	# libvirt's dnsmasq outlives libvirtd: stop the networks first.
	if pgrep -x libvirtd >/dev/null; then
		for n in $(virsh -q net-list --name 2>/dev/null); do virsh -q net-destroy "${n}" >/dev/null || true; done
	fi
	local pid
	for n in libvirtd virtlogd; do
		if alive "${RUN}/${n}.pid"; then
			pid=$(cat "${RUN}/${n}.pid") # the daemon removes the file as it exits
			kill -TERM "${pid}"
			poll 20 bash -c "! kill -0 ${pid}" || true
			log "${n} stopped"
		fi
		rm -f "${RUN}/${n}.pid"
	done
	# Empty LIBVIRT_* chains + their jumps stay behind; Docker's rules are untouched.
	local tbl chain
	for tbl in filter nat mangle; do
		for chain in $(iptables -t "${tbl}" -S 2>/dev/null | awk '/^-N LIBVIRT_/{print $2}'); do
			iptables -t "${tbl}" -S 2>/dev/null | grep -E "^-A [A-Z]+ .*-j ${chain}\$" | sed 's/^-A/-D/' |
				while read -r rule; do eval iptables -t "${tbl}" "${rule}" || true; done
			iptables -t "${tbl}" -F "${chain}" 2>/dev/null || true
			iptables -t "${tbl}" -X "${chain}" 2>/dev/null || true
		done
	done
	if [[ -s ${STATE}/kvm-perm.orig ]]; then
		read -r owner mode <"${STATE}/kvm-perm.orig"
		chown "${owner}" /dev/kvm && chmod "${mode}" /dev/kvm
		rm -f "${STATE}/kvm-perm.orig"
		log "/dev/kvm restored to ${owner} ${mode}"
	fi
}

[[ ${EUID} -eq 0 ]] || die "must run as root"
case ${1:-all} in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
all) cmd_install; cmd_start ;;
*) die "usage: $0 [install|start|stop]" ;;
esac
