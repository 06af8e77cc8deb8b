# ha-framework: build, test and install the OCF SDK's agents.
# `make test` is what CI runs on a fresh Debian 12 machine: it installs what
# it needs, starts a single-node Pacemaker, and runs every test.

GO       ?= go
PREFIX   ?= /usr
DESTDIR  ?=
OCFDIR   := $(DESTDIR)$(PREFIX)/lib/ocf/resource.d/ha-framework
CRMDIR   := $(DESTDIR)$(PREFIX)/share/crmsh/scripts
CRMSH    := $(notdir $(patsubst %/main.yml,%,$(wildcard crmsh/*/main.yml)))
AGENTS   := $(notdir $(patsubst %/main.go,%,$(wildcard agents/*/main.go)))
COMMIT   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X github.com/ha-framework/ha-framework/internal/version.Commit=$(COMMIT)
# Fuzzing budgets are counts of executions, not durations: with a duration,
# Go 1.26's fuzz coordinator can report its own deadline as a failure
# ("context deadline exceeded", no crashing input) when the machine is
# loaded. Three tiers, for targets from ~30k runs/s down to the JWT
# differential, which sends each input through a real nginx (~25 runs/s).
FUZZTIME       ?= 50000x
FUZZTIME_SLOW  ?= 2000x
FUZZTIME_NGINX ?= 300x
VERSION  := $(shell cat internal/version/VERSION)

export CGO_ENABLED := 0

.PHONY: packages lint-packages test-packages
.PHONY: all build test unit race lint static fuzz consul integration e2e bench-failover e2e-join e2e-vip vagrant-up vagrant-down e2e-vagrant install metadata bench demo demo-down demo-local deps cluster-up cluster-down clean
.PHONY: bench-scale

all: build

build:
	@mkdir -p bin
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./agents/,$(AGENTS))

# Everything CI runs.
test: deps lint build static unit race fuzz install cluster-up consul integration e2e

deps:
	testcluster/scripts/install-deps.sh

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./...

# The SDK under the race detector, which needs cgo (the agents themselves
# are still built without it).
race:
	CGO_ENABLED=1 $(GO) test -race -count=1 ./ocf/...

# Every agent binary must be static: a node may have nothing but the kernel
# and the software the agent manages.
static: build
	@for a in $(AGENTS); do \
		if ldd bin/$$a >/dev/null 2>&1; then \
			echo "bin/$$a is not static"; exit 1; fi; done; echo "static: $(AGENTS)"

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeParams$$' -fuzztime $(FUZZTIME_SLOW) ./ocf
	$(GO) test -run '^$$' -fuzz '^FuzzParseDuration$$' -fuzztime $(FUZZTIME) ./ocf
	$(GO) test -run '^$$' -fuzz '^FuzzOneLine$$' -fuzztime $(FUZZTIME) ./ocf
	$(GO) test -run '^$$' -fuzz '^FuzzSplitWords$$' -fuzztime $(FUZZTIME) ./ocf
	$(GO) test -run '^$$' -fuzz '^FuzzWordMatchesRegexp$$' -fuzztime $(FUZZTIME) ./internal/charclass
	$(GO) test -run '^$$' -fuzz '^FuzzParseDefinition$$' -fuzztime $(FUZZTIME) ./agents/directory-registration/registration
	$(GO) test -run '^$$' -fuzz '^FuzzConsulAnswers$$' -fuzztime $(FUZZTIME) ./agents/directory-registration/registration
	$(GO) test -run '^$$' -fuzz '^FuzzCleanText$$' -fuzztime $(FUZZTIME) ./agents/directory-registration/registration
	$(GO) test -run '^$$' -fuzz '^FuzzParseRoutes$$' -fuzztime $(FUZZTIME) ./agents/haproxy-dynamic/routes
	$(GO) test -run '^$$' -fuzz '^FuzzParseHealth$$' -fuzztime $(FUZZTIME) ./agents/haproxy-dynamic/watcher
	$(GO) test -run '^$$' -fuzz '^FuzzHealthAnswer$$' -fuzztime $(FUZZTIME) ./agents/haproxy-dynamic/watcher
	$(GO) test -run '^$$' -fuzz '^FuzzAppendFields$$' -fuzztime $(FUZZTIME) ./agents/haproxy-dynamic/haproxyapi
	$(GO) test -run '^$$' -fuzz '^FuzzReadServersState$$' -fuzztime $(FUZZTIME) ./agents/haproxy-dynamic/haproxyapi
	$(GO) test -run '^$$' -fuzz '^FuzzParsePublish$$' -fuzztime $(FUZZTIME) ./agents/docker-service/dockerservice
	$(GO) test -run '^$$' -fuzz '^FuzzParseMount$$' -fuzztime $(FUZZTIME) ./agents/docker-service/dockerservice
	$(GO) test -run '^$$' -fuzz '^FuzzParseEnvFile$$' -fuzztime $(FUZZTIME) ./agents/docker-service/dockerservice
	$(GO) test -run '^$$' -fuzz '^FuzzLastLine$$' -fuzztime $(FUZZTIME) ./agents/docker-service/dockerservice
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./agents/openresty-gateway/acl
	$(GO) test -run '^$$' -fuzz '^FuzzCheckObject$$' -fuzztime $(FUZZTIME) ./agents/openresty-gateway/strictjson
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./agents/openresty-gateway/routes
	$(GO) test -run '^$$' -fuzz '^FuzzParseKeyDocument$$' -fuzztime $(FUZZTIME) ./agents/openresty-gateway/policy
	$(GO) test -tags integration -run '^$$' -fuzz '^FuzzDifferential$$' -fuzztime $(FUZZTIME_NGINX) -parallel 1 ./agents/openresty-gateway/lua
	$(GO) test -tags integration -run '^$$' -fuzz '^FuzzDifferentialClaims$$' -fuzztime $(FUZZTIME_SLOW) -parallel 1 ./agents/openresty-gateway/lua

# The real Consul the tests run, built once from testcluster/tools and cached.
consul:
	testcluster/scripts/build-consul.sh >/dev/null

integration:
	$(GO) test -count=1 -tags integration -timeout 30m ./testcluster/... ./agents/... ./ocf/cluster/... ./internal/consulapi/...

# Real 3-node Pacemaker clusters in Docker (node image built locally from
# Debian packages and cached): failover, partitions, fencing.
e2e: deps build
	testcluster/dockercluster/run-e2e.sh

# docker-service on the 3-node cluster, an engine in every node: the
# container and its Consul registration follow the loss of their node, and
# stay put when it comes back (several minutes; not part of make test).
.PHONY: e2e-docker-service
e2e-docker-service: deps build
	HAFW_E2E_DOCKER_SERVICE=1 testcluster/dockercluster/run-e2e.sh -run '^TestDockerServiceNodeLoss$$' -v

# A pacemaker_remote node beside the 3 full nodes (its own image, built
# cold in minutes): Consul client, a service with its registration,
# haproxy-dynamic, node attributes and promotion scores through the remote
# node's proxied tools. About 2 minutes once the image exists; not part of
# make test.
.PHONY: e2e-remote
e2e-remote: deps build
	HAFW_E2E_REMOTE=1 testcluster/dockercluster/run-e2e.sh -run '^TestRemoteNode$$' -v

# Failover times as distributions over repeated runs (a benchmark, not a
# timed test): process crash and node loss with fencing, seen by a client
# through haproxy-dynamic on another node.
bench-failover: deps build
	testcluster/dockercluster/bench-failover.sh

# One scenario alone (make e2e runs both): a fourth node joining a running
# cluster by the documented procedure; the floating IP (IPaddr2) in front of
# the gateways after a node loss. About a minute each on a quiet machine.
e2e-join: deps build
	testcluster/dockercluster/run-e2e.sh -run '^TestNodeJoin$$' -v

e2e-vip: deps build
	testcluster/dockercluster/run-e2e.sh -run '^TestFloatingIP$$' -v

# Many resources: 200 directory-registration resources on the 3-node Docker
# cluster, created in one CIB transaction; the CPU time of pacemaker-execd's
# children per node per minute, beside the per-call CPU of our monitor and
# of a shell monitor doing the same calls (an estimate). Not in make test.
bench-scale: deps build
	HAFW_BENCH_SCALE=1 testcluster/dockercluster/run-e2e.sh -run '^TestBenchScaleRegistrations$$' -v -timeout 60m

# The same 3-node cluster as VMs with Vagrant/libvirt (KVM when usable,
# else software emulation), from a box built locally; not part of make test.
vagrant-up: build
	testcluster/vagrantcluster/run.sh up

vagrant-down:
	testcluster/vagrantcluster/run.sh down --all

# The e2e scenarios on the Vagrant/libvirt backend (each test boots its own
# 3 VMs: minutes per test under software emulation), by default a subset:
# formation, failover, partition, fencing. All of them:
#   make e2e-vagrant E2E_VAGRANT_RUN=.
E2E_VAGRANT_RUN ?= TestClusterForms|TestFailoverAfterKill|TestPartitionStopsMinority|TestFencing
e2e-vagrant: build
	testcluster/vagrantcluster/run-e2e.sh -v -run '$(E2E_VAGRANT_RUN)'

install: build
	install -d $(OCFDIR)
	for a in $(AGENTS); do install -m 0755 bin/$$a $(OCFDIR)/$$a; done
	for s in $(CRMSH); do install -d $(CRMDIR)/ha-framework-$$s && install -m 0644 crmsh/$$s/main.yml $(CRMDIR)/ha-framework-$$s/main.yml; done
	for a in $(AGENTS); do if [ -d agents/$$a/share ]; then install -d $(DESTDIR)$(PREFIX)/share/ha-framework/$$a && cp -R agents/$$a/share/. $(DESTDIR)$(PREFIX)/share/ha-framework/$$a/; fi; done

# The .deb and .rpm into dist/, offline and reproducibly (SOURCE_DATE_EPOCH
# from the last commit), by nfpm pinned in packaging/tools: every agent,
# its manual page from its meta-data, the crmsh scripts, agents/<a>/share/.
packages: build
	packaging/build.sh

# lintian and rpmlint on the packages, failing on any finding.
lint-packages: packages
	packaging/lint.sh dist/ha-framework_$(VERSION)_amd64.deb dist/ha-framework-$(VERSION)-1.x86_64.rpm

# The packages on a clean node container: install, agents listed and
# meta-data as nobody, crmsh scripts, upgrade under a running resource,
# purge; the .rpm's paths, digests and an install into a scratch root.
test-packages: deps lint-packages
	testcluster/dockercluster/dockerd.sh
	$(GO) test -count=1 -tags packages -timeout 15m -v ./packaging/

metadata: build
	for a in $(AGENTS); do bin/$$a meta-data > metadata/$$a.xml; done

# Per-call cost, each candidate measured side by side with /bin/true in one
# run: meta-data and monitor of the example against the shell Dummy agents,
# then a running Consul's monitor, then haproxy-dynamic: propagation from
# Consul to HAProxy, failed requests under change against reloading a
# re-rendered config on every change, and the watcher's memory and CPU;
# then openresty-gateway: wrk against a plain nginx TLS proxy and the gateway
# (RS256 + ACL, token cache on and off), and ACL propagation from Consul;
# docker-service's monitor against heartbeat/docker's; every agent's recurring
# monitor against resource-agents' shell agents for the same services, with
# /bin/true, in one interleaved run; and how long a start
# takes to fail when its daemon exits, beside the daemon's own run to exit.
bench: deps install consul
	$(GO) run ./testcluster/cmd/ocfbench -agent bin/example
	$(GO) test -run '^$$' -bench 'StartFailure|DaemonExit' -benchtime 30x ./ocf/daemon/
	$(GO) test -tags integration -run '^$$' -bench ConsulMonitor -benchtime 300x ./testcluster/
	$(GO) test -tags integration -run '^$$' -bench MonitorCost -benchtime 50x ./testcluster/
	$(GO) test -tags integration -run '^$$' -bench . -benchtime 1x -timeout 30m ./agents/haproxy-dynamic/haproxydynamic/
	$(GO) test -tags integration -run '^$$' -bench . -benchtime 1x ./agents/openresty-gateway/lua/ ./agents/openresty-gateway/companion/
	$(GO) test -tags integration -run '^$$' -bench Monitor -benchtime 20x ./agents/docker-service/dockerservice/

# The whole stack on a 3-node cluster of Docker containers on this machine
# (the nodes install the .deb of make packages), the stack set up by
# `crm script run ha-framework-stack`: Consul, the web service as a
# docker-service container, haproxy-dynamic, openresty-gateway with a test
# CA, JWT key and ACL; then requests, an ACL change and a node loss, with
# numbers. The cluster stays up for you; make demo-down removes it.
demo: deps build
	packaging/build.sh deb >/dev/null
	testcluster/dockercluster/dockerd.sh
	$(GO) build -trimpath -o bin/demo/ ./testcluster/cmd/hafw-demo
	HAFW_NODE_DEB=$(CURDIR)/dist/ha-framework_$(VERSION)_amd64.deb bin/demo/hafw-demo up

demo-down:
	$(GO) build -trimpath -o bin/demo/ ./testcluster/cmd/hafw-demo
	bin/demo/hafw-demo down

# The example agent as a promotable clone on the local single-node Pacemaker.
demo-local: deps install cluster-up
	testcluster/scripts/demo.sh

cluster-up:
	testcluster/scripts/pacemaker.sh up

cluster-down:
	testcluster/scripts/pacemaker.sh down

clean:
	rm -rf bin
