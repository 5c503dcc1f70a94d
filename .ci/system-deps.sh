#!/usr/bin/env bash
# Debian packages for the `server` tests: PostgreSQL (a real MLflow backend store) and
# Chromium (the MLflow UI checked in a headless browser). Idempotent and quiet: does
# nothing when both are present.
set -euo pipefail
need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || need+=(postgresql)
command -v chromium > /dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
command -v apt-get > /dev/null || { echo "system-deps: no apt-get; install ${need[*]} yourself" >&2; exit 1; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${need[@]}" > /dev/null
