#!/usr/bin/env bash
# Builds the ha-framework DEB and RPM packages from the tree, offline and
# reproducibly: the same commit gives the same bytes (file times, the
# changelog date and the package build time all come from SOURCE_DATE_EPOCH,
# by default the time of the last commit; the RPM build host is fixed).
#
# Contents, all found in the tree, so a new agent or crmsh script needs no edit here:
#   agents/<a>/main.go       -> /usr/lib/ocf/resource.d/ha-framework/<a> (from bin/, make build)
#   agents/<a>/share/...     -> /usr/share/ha-framework/<a>/... (runtime files an agent reads)
#   crmsh/<s>/main.yml       -> /usr/share/crmsh/scripts/ha-framework-<s>/main.yml
#   `<a> meta-data`          -> /usr/share/man/man7/ocf_ha-framework_<a>.7.gz (internal/cmd/ocfman)
#   README.md                -> /usr/share/doc/ha-framework/README.md (RPM)
#   CHANGELOG.md             -> changelog.gz (Debian) / %changelog (RPM) (internal/cmd/pkgchangelog)
#   packaging/copyright      -> copyright, followed by the licenses of the Go
#                               modules linked into the agents
#   packaging/lintian-overrides -> /usr/share/lintian/overrides/ha-framework
#
# Usage: packaging/build.sh [deb] [rpm]   (both by default)
# Prints the path of each package on stdout; progress goes to stderr.
# Environment:
#   HAFW_VERSION     package version (default: internal/version/VERSION)
#   HAFW_BIN         folder of the built agents (default: bin/)
#   HAFW_DIST        output folder (default: dist/)
#   SOURCE_DATE_EPOCH  default: the last commit's time
#   HAFW_MAINTAINER, HAFW_HOMEPAGE, HAFW_LICENSE  package fields (defaults below)
#   GO               default go
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly GO=${GO:-go}

log() { printf 'packaging/build.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# license_name FILE prints the SPDX name of a license text: the few
# licenses the Go modules we link use. Anything else stops the build, so a
# new dependency's license is looked at before it ships.
license_name() {
	local f=$1
	if grep -q 'Mozilla Public License Version 2.0\|Mozilla Public License, version 2.0' "${f}"; then
		echo MPL-2.0
	elif grep -q 'Apache License' "${f}" && grep -q 'Version 2.0' "${f}"; then
		echo Apache-2.0
	elif grep -q 'Permission is hereby granted, free of charge' "${f}"; then
		echo Expat
	elif grep -q 'Redistribution and use in source and binary forms' "${f}"; then
		if grep -qi 'neither the name\|names of its contributors' "${f}"; then echo BSD-3-Clause; else echo BSD-2-Clause; fi
	else
		return 1
	fi
}

# dep5_text prints a text as the continuation lines of a DEP-5 field.
dep5_text() { sed -e 's/[[:space:]]*$//' -e 's/^$/./' -e 's/^/ /' "$1"; }

# copyright prints the package's copyright file: the project's paragraphs,
# then one paragraph per Go module linked into the agents (and Go itself),
# with its license; long licenses (MPL, Apache) once, at the end.
copyright() {
	local bin=$1 mod dir lic name holders
	local -A long=()
	cat "${ROOT}/packaging/copyright"
	{
		printf 'std %s\n' "$(${GO} env GOROOT)"
		for a in "${AGENTS[@]}"; do "${GO}" version -m "${bin}/${a}"; done |
			awk '$1 == "dep" { print $2, $3 }' | sort -u |
			while read -r mod ver; do
				printf '%s %s\n' "${mod}@${ver}" "$(cd "${ROOT}" && "${GO}" list -m -f '{{.Dir}}' "${mod}")"
			done
	} >"${STAGE}/modules"
	while read -r mod dir; do
		lic=$(find "${dir}" -maxdepth 1 -type f \( -iname 'LICENSE*' -o -iname 'LICENCE*' -o -iname 'COPYING*' \) | sort | head -n1)
		[[ -n ${lic} ]] || die "no license file in ${dir} (${mod})"
		name=$(license_name "${lic}") || die "unknown license in ${lic} (${mod}): add it to license_name"
		# Lines naming a holder; Apache's appendix template ("[yyyy]") is none.
		holders=$(grep -i '^[[:space:]]*copyright[[:space:]]' "${lic}" | grep -v '\[yyyy\]' | sed 's/^[[:space:]]*//' | sort -u || true)
		[[ -n ${holders} ]] || holders="the authors of ${mod%@*}"
		[[ ${mod} == std ]] && mod="Go standard library and runtime $(${GO} env GOVERSION)"
		printf '\nFiles: *\nComment: linked into the agents: %s\n' "${mod}"
		printf 'Copyright: %s\n' "$(printf '%s\n' "${holders}" | sed '2,$s/^/ /')"
		printf 'License: %s\n' "${name}"
		case ${name} in
		MPL-2.0 | Apache-2.0) long[${name}]=${lic} ;;
		*) dep5_text "${lic}" ;;
		esac
	done <"${STAGE}/modules"
	for name in $(printf '%s\n' "${!long[@]}" | sort); do
		printf '\nLicense: %s\n' "${name}"
		dep5_text "${long[${name}]}"
	done
}

stage() {
	local bin=$1 a s f date
	rm -rf "${STAGE}"
	mkdir -p "${STAGE}/root/usr/lib/ocf/resource.d/ha-framework" "${STAGE}/root/usr/share/crmsh/scripts" \
		"${STAGE}/man" "${STAGE}/doc"
	date=$(date -u -d "@${SOURCE_DATE_EPOCH}" +%F)
	# The generators, built once (go run would link them once per call).
	"${GO}" build -o "${STAGE}/tools/" ./internal/cmd/ocfman ./internal/cmd/pkgchangelog
	for a in "${AGENTS[@]}"; do
		[[ -x ${bin}/${a} ]] || die "${bin}/${a} missing: run make build"
		install -m 0755 "${bin}/${a}" "${STAGE}/root/usr/lib/ocf/resource.d/ha-framework/${a}"
		"${bin}/${a}" meta-data >"${STAGE}/${a}.xml" || die "${a} meta-data failed"
		"${STAGE}/tools/ocfman" -provider ha-framework -date "${date}" \
			-o "${STAGE}/man/ocf_ha-framework_${a}.7" "${STAGE}/${a}.xml"
		if [[ -d ${ROOT}/agents/${a}/share ]]; then
			mkdir -p "${STAGE}/root/usr/share/ha-framework/${a}"
			cp -R --no-preserve=ownership "${ROOT}/agents/${a}/share/." "${STAGE}/root/usr/share/ha-framework/${a}/"
		fi
	done
	gzip -9n "${STAGE}"/man/*.7
	for s in "${ROOT}"/crmsh/*/main.yml; do
		s=$(basename "$(dirname "${s}")")
		install -D -m 0644 "${ROOT}/crmsh/${s}/main.yml" "${STAGE}/root/usr/share/crmsh/scripts/ha-framework-${s}/main.yml"
	done
	"${STAGE}/tools/pkgchangelog" -format deb -version "${HAFW_VERSION}" -epoch "${SOURCE_DATE_EPOCH}" \
		-maintainer "${HAFW_MAINTAINER}" -o "${STAGE}/doc/changelog" CHANGELOG.md
	gzip -9n "${STAGE}/doc/changelog"
	"${STAGE}/tools/pkgchangelog" -format rpm -version "${HAFW_VERSION}" -release 1 -epoch "${SOURCE_DATE_EPOCH}" \
		-maintainer "${HAFW_MAINTAINER}" -o "${STAGE}/changelog.yml" CHANGELOG.md
	copyright "${bin}" >"${STAGE}/doc/copyright"
	cp "${ROOT}/packaging/lintian-overrides" "${STAGE}/doc/lintian-overrides"
	cp "${ROOT}/README.md" "${STAGE}/doc/README.md"

	# Modes and times independent of the umask and of when files were written:
	# directories 0755, agents 0755, everything else 0644 unless executable in the tree.
	find "${STAGE}/root" -type d -exec chmod 0755 {} +
	find "${STAGE}" -type f ! -perm -u+x -exec chmod 0644 {} +
	find "${STAGE}" -type f -perm -u+x -exec chmod 0755 {} +
	find "${STAGE}" -exec touch -h -d "@${SOURCE_DATE_EPOCH}" {} +
}

main() {
	local formats=("$@") nfpm f cfg out m
	[[ ${#formats[@]} -gt 0 ]] || formats=(deb rpm)
	for f in "${formats[@]}"; do [[ ${f} == deb || ${f} == rpm ]] || die "unknown format ${f}: want deb or rpm"; done
	cd "${ROOT}"
	HAFW_VERSION=${HAFW_VERSION:-$(tr -d '[:space:]' <internal/version/VERSION)}
	[[ ${HAFW_VERSION} =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "version '${HAFW_VERSION}' is not a package version"
	if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
		SOURCE_DATE_EPOCH=$(git -C "${ROOT}" log -1 --format=%ct 2>/dev/null) ||
			die "no git history: set SOURCE_DATE_EPOCH"
	fi
	HAFW_MAINTAINER=${HAFW_MAINTAINER:-ha-framework developers <ha-framework@users.noreply.github.com>}
	HAFW_HOMEPAGE=${HAFW_HOMEPAGE:-https://github.com/ha-framework/ha-framework}
	HAFW_LICENSE=${HAFW_LICENSE:-$(awk '/^License:/ { print $2; exit }' packaging/copyright)}
	export HAFW_VERSION SOURCE_DATE_EPOCH HAFW_MAINTAINER HAFW_HOMEPAGE HAFW_LICENSE
	local bin=${HAFW_BIN:-${ROOT}/bin} dist=${HAFW_DIST:-${ROOT}/dist}
	bin=$(cd "${bin}" && pwd)
	mkdir -p "${dist}"
	dist=$(cd "${dist}" && pwd)
	mapfile -t AGENTS < <(for f in agents/*/main.go; do basename "$(dirname "${f}")"; done)
	[[ ${#AGENTS[@]} -gt 0 ]] || die "no agents/*/main.go"
	STAGE=$(mktemp -d "${dist}/.stage.XXXXXX")
	trap 'rm -rf "${STAGE}"' EXIT
	nfpm=$("${ROOT}/packaging/build-nfpm.sh")
	stage "${bin}"
	for f in "${formats[@]}"; do
		cfg=${STAGE}/nfpm-${f}.yaml
		# nfpm expands the environment in most fields, but not in the
		# license, and it reads a tree's source before it expands: those
		# two are written in.
		sed -e "s|\${HAFW_STAGE}|${STAGE}|g" -e "s|\${HAFW_LICENSE}|${HAFW_LICENSE}|g" packaging/nfpm.yaml >"${cfg}"
		# RPM's %changelog; nfpm would also put it in the .deb as
		# changelog.Debian.gz, the wrong name for a native package.
		if [[ ${f} == rpm ]]; then
			for m in "${STAGE}"/man/*.7.gz; do
				printf '  - src: %s\n    dst: /usr/share/man/man7/%s\n    type: doc\n' "${m}" "${m##*/}"
			done >>"${cfg}"
			printf 'changelog: %s\n' "${STAGE}/changelog.yml" >>"${cfg}"
		fi
		case ${f} in
		deb) out=${dist}/ha-framework_${HAFW_VERSION}_amd64.deb ;;
		rpm) out=${dist}/ha-framework-${HAFW_VERSION}-1.x86_64.rpm ;;
		esac
		"${nfpm}" package --config "${cfg}" --packager "${f}" --target "${out}" >&2
		log "built ${out} ($(stat -c %s "${out}") bytes)"
		printf '%s\n' "${out}"
	done
}

main "$@"
