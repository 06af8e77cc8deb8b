#!/usr/bin/env bash
# Failover benchmark through haproxy-dynamic: repeated process
# crashes (kill -9 of the service) and node losses (with fencing), measured
# from the fault to the first request served again through the proxy of
# another node. Prints min/p50/max in ms and the failed requests, one
# "BENCH" line per kind. Goals: crash < 2 s, node loss < 8 s, no failed
# request. After each crash the cluster settles (the DC idle, nothing left
# to schedule) before the failure is cleaned up, and again after: a cleanup
# during a running transition leaves the DC waiting for an operation whose
# history it deleted.
#
# Then active-active: the same service as a clone on every node
# (HAFW_BENCH_ACTIVE node losses, default 3), where clients should see no
# failed request and no wait of a second: the proxy redispatches what it
# sent to the lost instance until Consul drops it.
#
# Node losses run twice, on separate clusters: with corosync's default
# token (3000 ms; detection takes token + consensus, about 8 s for 3 nodes)
# and with HAFW_BENCH_FAST_TOKEN (default 1000 ms, a common choice on a
# LAN; 0 skips that round).
#
#   HAFW_BENCH_CRASH=5 HAFW_BENCH_NODELOSS=3 HAFW_BENCH_ACTIVE=3 HAFW_BENCH_MAX=25m testcluster/dockercluster/bench-failover.sh
#
# Extra arguments go to go test (via run-e2e.sh).
set -euo pipefail
readonly HERE=$(cd "$(dirname "$0")" && pwd)
export HAFW_BENCH_FAILOVER=1
# The later -timeout wins over run-e2e.sh's 30m: the cap plus cluster setup.
"${HERE}/run-e2e.sh" -run '^TestBenchFailover$' -v -timeout 45m "$@"
fast=${HAFW_BENCH_FAST_TOKEN:-1000}
if [[ ${fast} != 0 ]]; then
	HAFW_TOKEN_MS=${fast} HAFW_BENCH_CRASH=0 "${HERE}/run-e2e.sh" -run '^TestBenchFailover$' -v -timeout 45m "$@"
fi
