#!/usr/bin/env bash
# Offline checks of the observability stack's Prometheus and Alertmanager
# files, with the tools Debian's `prometheus` and `prometheus-alertmanager`
# packages install (promtool 2.42, amtool 0.25 on bookworm):
#   * promtool check config   prometheus.yml and prometheus-direct.yml (also checks the rule files they load)
#   * promtool check rules    every alert rule file
#   * promtool test rules     the alert unit tests (every alert firing and not firing)
#   * amtool check-config     alertmanager.yml as shipped
# Runs from any directory; exits non-zero on the first failure.
# .ci/run installs the packages and calls this script.
set -euo pipefail

cd "$(dirname "$0")/.."

for tool in promtool amtool; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "stack-checks: $tool not found (apt-get install prometheus prometheus-alertmanager)" >&2
    exit 2
  fi
done

run() {
  echo "+ $*"
  "$@"
}

shopt -s nullglob
rules=(prometheus/rules/*.yml)
rule_tests=(prometheus/rules/tests/*.yml)
if [ "${#rules[@]}" -eq 0 ] || [ "${#rule_tests[@]}" -eq 0 ]; then
  echo "stack-checks: no rule files or rule tests found" >&2
  exit 1
fi

run promtool check config prometheus.yml
run promtool check config prometheus-direct.yml
run promtool check rules "${rules[@]}"
run promtool test rules "${rule_tests[@]}"
run amtool check-config alertmanager.yml

echo "stack-checks: OK"
