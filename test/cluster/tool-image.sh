#!/usr/bin/env bash
# Build a tool image from Debian packages the way BioContainers are made: the
# packages' files with those of their dependencies, and busybox for /bin/sh and the
# usual commands; nothing of byok8s (and no Python unless a package is one). Written as a docker-archive tar
# (pack-image.sh), cached by tag and packages; prints the tar's path.
# Usage: tool-image.sh TAG [--no-shell] PACKAGE...
#   --no-shell: no busybox, so no /bin/sh (a distroless-like image)
set -euo pipefail
TAG=$1; shift
shell=busybox-static
if [ "${1:-}" = --no-shell ]; then shell=; shift; fi
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${BYOK8S_CLUSTER_CACHE:-$HOME/.cache/byok8s-cluster}
key=$( (echo "$TAG $shell $*"; cat "$0" "$HERE/pack-image.sh") | sha256sum | cut -c1-16)
OUT=$CACHE/tool-image-$key.tar
if [ -f "$OUT" ]; then echo "$OUT"; exit 0; fi
mkdir -p "$CACHE"

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# Depends and Pre-Depends, recursively (not Recommends: BioContainers carry none).
# shellcheck disable=SC2086
packages=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances "$@" $shell | grep '^[a-z0-9]' | sort -u)
mkdir "$work/debs" "$work/root"
# shellcheck disable=SC2086
(cd "$work/debs" && apt-get download -qq $packages >/dev/null 2>&1) ||
  (cd "$work/debs" && apt-get download $packages >&2)
for deb in "$work/debs"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
rm -rf "$work/root/usr/share/doc" "$work/root/usr/share/man" "$work/root/usr/share/locale"
if [ -n "$shell" ]; then
  for applet in $("$work/root/bin/busybox" --list); do
    [ -e "$work/root/bin/$applet" ] || [ -e "$work/root/usr/bin/$applet" ] ||
      ln -s busybox "$work/root/bin/$applet"
  done
fi
mkdir -p "$work/root/tmp" "$work/root/workdir"; chmod 1777 "$work/root/tmp" "$work/root/workdir"
bash "$HERE/pack-image.sh" "$work/root" "$TAG" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "$OUT"
