#!/usr/bin/env bash
# Lints the built packages: lintian (every tag, pedantic and experimental
# included) on the .deb and rpmlint on the .rpm, with the project's overrides
# (packaging/lintian-overrides, shipped in the .deb; packaging/rpmlint.toml).
# Fails on any finding, a warning included.
# Usage: packaging/lint.sh DEB RPM
set -euo pipefail

readonly HERE=$(cd "$(dirname "$0")" && pwd)
[[ $# -eq 2 && $1 == *.deb && $2 == *.rpm ]] || { echo "usage: $0 DEB RPM" >&2; exit 2; }
status=0
# --fail-on: lintian exits 0 on warnings by default.
out=$(lintian --pedantic --display-experimental --fail-on error,warning,info,pedantic "$1" 2>&1) || status=1
printf '%s\n' "${out}" | grep -v '^running with root privileges' || true
# rpmlint exits 0 on warnings: its summary line tells.
out=$(rpmlint -c "${HERE}/rpmlint.toml" "$2" 2>&1) || status=1
printf '%s\n' "${out}" | grep -E '^(ha-framework|.*packages and .* checked)' || true
grep -q ' 0 errors, 0 warnings' <<<"${out}" || status=1
[[ ${status} -eq 0 ]] && echo "lint.sh: lintian and rpmlint clean"
exit "${status}"
