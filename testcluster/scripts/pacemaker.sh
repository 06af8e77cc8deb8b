#!/usr/bin/env bash
# Single-node Pacemaker test cluster for machines without systemd as PID 1.
# Usage: pacemaker.sh up | wait | down [--force] | status
set -euo pipefail

readonly CONF=/etc/corosync/corosync.conf
readonly CIB=/var/lib/pacemaker/cib/cib.xml
readonly MARK='# written by ha-framework testcluster/scripts/pacemaker.sh'
readonly STARTED=/run/hafw-test-cluster.started # name=pid of what `up` started
readonly TIMEOUT=${HAFW_CLUSTER_TIMEOUT:-120}
readonly DAEMONS='pacemakerd|pacemaker-[a-z]+' # comm is cut to 15 characters

log() { printf 'pacemaker.sh: %s\n' "$*"; }
die() { log "$*" >&2; exit 1; }

# poll SECONDS CMD...: runs CMD every second until it succeeds or time is up.
poll() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 1
	done
}

# Replaces corosync.conf atomically unless it already is the wanted one; a
# foreign config (Debian's sample names the node "node1") is backed up once.
write_conf() {
	local want tmp
	want="${MARK}; rewritten when it differs.
totem {
    version: 2
    cluster_name: hafw-test
    transport: knet
}
nodelist {
    node {
        ring0_addr: 127.0.0.1
        name: $(uname -n)
        nodeid: 1
    }
}
quorum {
    provider: corosync_votequorum
}
logging {
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
    to_syslog: no
}"
	[[ -f ${CONF} && $(<"${CONF}") == "${want}" ]] && return 0
	if [[ -f ${CONF} && ! -e ${CONF}.hafw-bak ]] && ! grep -qF "${MARK}" "${CONF}"; then
		cp -p "${CONF}" "${CONF}.hafw-bak"
	fi
	tmp=$(mktemp "${CONF}.XXXXXX")
	printf '%s\n' "${want}" >"${tmp}"
	chmod 0644 "${tmp}"
	mv -f "${tmp}" "${CONF}"
}

# One node has no fencing device (nothing would start) and no peer to wait 20 s for.
set_options() {
	local opt
	for opt in stonith-enabled=false dc-deadtime=2s; do
		[[ $(crm_attribute -t crm_config -n "${opt%%=*}" -G -q 2>/dev/null) == "${opt#*=}" ]] && continue
		crm_attribute -t crm_config -n "${opt%%=*}" -v "${opt#*=}"
	done
}

# A first start seeds the CIB offline with those options: 6 s instead of 25 s.
seed_cib() {
	local tmp
	[[ -e ${CIB} ]] && return 0
	tmp=$(mktemp "${CIB}.XXXXXX") # mode 0600, as pacemaker-based wants it
	cibadmin --empty >"${tmp}"
	(export CIB_file=${tmp}; set_options)
	chown hacluster:haclient "${tmp}" # fails without the user the package creates
	mv -f "${tmp}" "${CIB}"
}

# ready: the DC is elected and the local node is online.
ready() {
	local xml node
	xml=$(crm_mon -1 --output-as=xml 2>/dev/null) || return 1
	node=$(crm_node -n 2>/dev/null) || return 1
	[[ $(xmllint --xpath "count(//current_dc[@present='true'])
		+ count(//nodes/node[@name='${node}'][@online='true'])" - <<<"${xml}") == 2 ]]
}

wait_ready() {
	poll "${TIMEOUT}" ready || die "no DC or node offline after ${TIMEOUT}s; see /var/log/pacemaker/"
}

cmd_up() {
	local did=''
	mkdir -p /var/log/corosync /var/log/pacemaker /run/resource-agents
	if ! pgrep -x corosync >/dev/null; then
		write_conf
		corosync >>/var/log/corosync/corosync.out 2>&1 # it daemonizes itself
		poll 30 corosync-cfgtool -s || die "corosync not up; see /var/log/corosync/"
		echo "corosync=$(pgrep -xo corosync)" >"${STARTED}" # a fresh cluster: forget old pids
		did+=' corosync'
	fi
	if ! pgrep -x pacemakerd >/dev/null; then
		seed_cib
		# setsid: its own session, so the caller's end does not take it down.
		setsid nohup pacemakerd </dev/null >>/var/log/pacemaker/pacemakerd.out 2>&1 &
		echo "pacemakerd=$!" >>"${STARTED}"
		did+=' pacemakerd'
	fi
	wait_ready
	set_options
	log "started${did:- nothing, cluster already running}; node $(crm_node -n) online with DC after ${SECONDS}s"
}

# pid_of NAME [--force]: the pid `up` recorded for NAME if it still runs; any NAME if forced.
pid_of() {
	local pid
	[[ ${2:-} == --force ]] && { pgrep -xo "$1" || true; return; }
	pid=$(sed -n "s/^$1=//p" "${STARTED}" 2>/dev/null | tail -n1)
	[[ -n ${pid} && $(cat "/proc/${pid}/comm" 2>/dev/null) == "$1" ]] && echo "${pid}"
	return 0
}

cmd_down() {
	local pm cs
	[[ -z ${1:-} || $1 == --force ]] || die "usage: down [--force]"
	pm=$(pid_of pacemakerd "${1:-}") cs=$(pid_of corosync "${1:-}")
	rm -f "${STARTED}"
	[[ -n ${pm}${cs} ]] || { log "nothing to stop (not started here; use --force)"; return 0; }
	if [[ -n ${pm} ]]; then
		kill -TERM "${pm}" || true # pacemakerd stops its sub-daemons in order
		poll 60 bash -c "! pgrep -x '${DAEMONS}'" || pkill -KILL -x "${DAEMONS}" || true
	fi
	if [[ -n ${cs} ]]; then
		corosync-cfgtool -H --force >/dev/null 2>&1 || kill -TERM "${cs}" || true
		poll 30 bash -c "! kill -0 ${cs}" || kill -KILL "${cs}" || true
	fi
	log "stopped${pm:+ pacemakerd}${cs:+ corosync}"
}

[[ ${EUID} -eq 0 ]] || die "must run as root"
case ${1:-} in
up) cmd_up ;;
wait) wait_ready; log "node $(crm_node -n) online with DC" ;;
down) cmd_down "${2:-}" ;;
status) crm_mon -1 ;;
*) die "usage: $0 up | wait | down [--force] | status" ;;
esac
