#!/usr/bin/env bash
# Build the job image (Debian bookworm + Python + byok8s with snakemake and the
# storage plugins, at the versions this checkout pins) with debootstrap, and
# write it as a docker-archive tar. Wheels are built on the host, so the chroot
# needs no network. Cached by the hash of the package sources.
# Usage: job-image.sh OUT_TAR TAG
set -euo pipefail
OUT=$1 TAG=$2
ROOT_DIR=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${BYOK8S_CLUSTER_CACHE:-$HOME/.cache/byok8s-cluster}
PY=${PYTHON:-$( [ -x "$ROOT_DIR/.venv/bin/python" ] && echo "$ROOT_DIR/.venv/bin/python" || echo python3)}
key=$(cd "$ROOT_DIR" && cat setup.cfg pyproject.toml $(git ls-files byok8s workflows \
  snakemake_storage_plugin_byok8s_azure 2>/dev/null || find byok8s workflows -type f) \
  | sha256sum | cut -c1-16)
if [ -f "$CACHE/job-image-$key.tar" ]; then cp "$CACHE/job-image-$key.tar" "$OUT"; exit 0; fi

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
"$PY" -m pip wheel -q -w "$work/wheels" "$ROOT_DIR" >&2
cp -a "$base" "$work/root"
mkdir -p "$work/root/wheels"; cp "$work/wheels/"*.whl "$work/root/wheels/"
chroot "$work/root" /usr/bin/python3 -m venv /opt/byok8s
chroot "$work/root" /opt/byok8s/bin/pip install -q --no-index --find-links /wheels byok8s >&2
rm -rf "$work/root/wheels" "$work/root/root/.cache"
# Jobs run as a non-root user where the pod asks for one; /workdir is the pods' work dir.
mkdir -p "$work/root/workdir"; chmod 1777 "$work/root/workdir"
IMAGE_PATH=/opt/byok8s/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  bash "$(dirname "$0")/pack-image.sh" "$work/root" "$TAG" >"$CACHE/job-image-$key.tar.tmp"
mv "$CACHE/job-image-$key.tar.tmp" "$CACHE/job-image-$key.tar"
cp "$CACHE/job-image-$key.tar" "$OUT"
