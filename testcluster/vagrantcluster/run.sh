#!/usr/bin/env bash
# The hafw test cluster on Vagrant/libvirt.
# Usage: run.sh up | wait | status | ssh NODE [CMD...] | down [--all]
#   up      host setup (setup.sh), box (build-box.sh, cached), vagrant up,
#           then waits until every node is online in crm_mon
#   wait    only the last step of up
#   status  vagrant status + crm_mon -1 from node1
#   down    vagrant destroy -f (the box stays cached);
#           --all also stops libvirtd/virtlogd and undoes setup.sh start
# Environment: HAFW_NODES (3), HAFW_VM_MEMORY (512), HAFW_VAGRANT_TIMEOUT (600 s),
# and the others listed in the Vagrantfile.
set -euo pipefail
. "$(dirname "$0")/env.sh"

readonly NODES=${HAFW_NODES:-3}
readonly TIMEOUT=${HAFW_VAGRANT_TIMEOUT:-600}
export HAFW_NODES=${NODES}
export VAGRANT_CWD=${HAFW_VAGRANT_DIR}
# Machine state outside the source tree.
export VAGRANT_DOTFILE_PATH=${VAGRANT_DOTFILE_PATH:-${HAFW_VAGRANT_STATE}/dot-vagrant}
export HAFW_AUTHKEY=${HAFW_AUTHKEY:-${HAFW_VAGRANT_STATE}/authkey}
HAFW_BOX=$("${HAFW_VAGRANT_DIR}/build-box.sh" name)
export HAFW_BOX

log() { printf 'run.sh: %s\n' "$*"; }
die() { log "$*" >&2; exit 1; }

# all_online: node1's crm_mon sees a DC and NODES nodes online.
all_online() {
	local n
	n=$(vagrant ssh node1 -c "sudo crm_mon -1 --output-as=xml 2>/dev/null | xmllint --xpath \
		'count(//nodes/node[@online=\"true\"]) * number(count(//current_dc[@present=\"true\"]) = 1)' -" \
		2>/dev/null | tr -d '\r') || return 1
	[[ ${n} == "${NODES}" ]]
}

cmd_wait() {
	local deadline=$((SECONDS + TIMEOUT))
	until all_online; do
		((SECONDS < deadline)) || die "not all ${NODES} nodes online after ${TIMEOUT}s"
		sleep 2
	done
	log "all ${NODES} nodes online"
}

cmd_up() {
	local t0=${SECONDS} t
	"${HAFW_VAGRANT_DIR}/setup.sh"
	"${HAFW_VAGRANT_DIR}/build-box.sh"
	mkdir -p "${HAFW_VAGRANT_STATE}"
	if [[ ! -s ${HAFW_AUTHKEY} ]]; then
		(umask 077; head -c 256 /dev/urandom >"${HAFW_AUTHKEY}")
	fi
	t=${SECONDS}
	vagrant up --parallel
	log "vagrant up: $((SECONDS - t))s"
	t=${SECONDS}
	cmd_wait
	log "cluster formed $((SECONDS - t))s after vagrant up; total $((SECONDS - t0))s"
	vagrant ssh node1 -c 'sudo crm_mon -1' 2>/dev/null
}

cmd_status() {
	vagrant status
	vagrant ssh node1 -c 'sudo crm_mon -1' 2>/dev/null || true
}

cmd_down() {
	if pgrep -x libvirtd >/dev/null; then
		vagrant destroy -f
		local net
		for net in hafw-cluster hafw-mgmt; do
			virsh -q net-info "${net}" >/dev/null 2>&1 || continue
			virsh -q net-destroy "${net}" >/dev/null 2>&1 || true
			virsh -q net-undefine "${net}" >/dev/null 2>&1 || true
		done
	fi
	[[ ${1:-} == --all ]] && "${HAFW_VAGRANT_DIR}/setup.sh" stop
	return 0
}

[[ ${EUID} -eq 0 ]] || die "must run as root"
case ${1:-} in
up) cmd_up ;;
wait) cmd_wait ;;
status) cmd_status ;;
ssh) shift; node=${1:?node}; shift; if (($#)); then vagrant ssh "${node}" -c "$*"; else vagrant ssh "${node}"; fi ;;
down) cmd_down "${2:-}" ;;
*) die "usage: $0 up | wait | status | ssh NODE [CMD...] | down [--all]" ;;
esac
