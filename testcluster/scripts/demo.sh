#!/usr/bin/env bash
# The demo behind `make demo`: ocf:ha-framework:example as a promotable
# clone on the local single-node Pacemaker, a failure Pacemaker recovers,
# and a parameter change applied by reload-agent without a restart.
# Run again at will: it replaces the demo resource it made before.
set -euo pipefail

readonly RSC=demo-example
readonly STATE=/run/resource-agents/example-demo.state
say() { printf '\n== %s\n' "$*"; }
# settle waits for the cluster to finish what it is doing.
settle() { crm_resource --wait --timeout=60s >/dev/null; }

if crm_resource --resource "$RSC" --locate >/dev/null 2>&1; then
	say "removing the previous demo resource"
	pcs resource delete "$RSC" >/dev/null
	settle
fi

say "pcs resource create $RSC ocf:ha-framework:example label=demo state=$STATE promotable"
pcs resource create "$RSC" ocf:ha-framework:example label=demo state="$STATE" \
	op monitor interval=3s role=Promoted op monitor interval=4s promotable
settle
crm_mon -1 --include=none,resources

say "state file: $(tr '\n' ' ' <"$STATE")"

say "simulating a failure: removing $STATE; the next monitor sees it and Pacemaker recovers"
rm -f "$STATE"
for _ in $(seq 1 30); do
	[[ -e $STATE ]] && break
	sleep 1
done
settle
crm_mon -1 --include=none,resources,failures

say "pcs resource update $RSC message=updated (a reloadable parameter: reload-agent, no restart)"
pcs resource update "$RSC" message=updated
settle
say "state file: $(tr '\n' ' ' <"$STATE")"
grep -h "reload-agent operation for $RSC" /var/log/pacemaker/pacemaker.log | tail -1 || true

say "done; remove it with: pcs resource delete $RSC"
