#!/usr/bin/env bash
# Pack a root filesystem (a directory) or one static binary as a one-layer image,
# written to stdout as a docker-archive tar that `ctr images import` reads.
# Usage: pack-image.sh ROOTFS_DIR|BINARY TAG [ENTRYPOINT]   (IMAGE_PATH sets PATH)
set -euo pipefail
SRC=$1 TAG=$2 ENTRY=${3:-}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
if [ -d "$SRC" ]; then
  tar -C "$SRC" --numeric-owner -cf "$work/layer.tar" .
else
  mkdir -p "$work/root"; cp "$SRC" "$work/root/$(basename "$ENTRY")"
  tar -C "$work/root" --numeric-owner -cf "$work/layer.tar" .
fi
diff_id=sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
entry_json=null; [ -n "$ENTRY" ] && entry_json="[\"$ENTRY\"]"
cat >"$work/config.json" <<CFG
{"architecture":"amd64","os":"linux","config":{"Entrypoint":$entry_json,
 "Env":["PATH=${IMAGE_PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}"]},
 "rootfs":{"type":"layers","diff_ids":["$diff_id"]}}
CFG
cfg=$(sha256sum "$work/config.json" | cut -d' ' -f1).json
mv "$work/config.json" "$work/$cfg"
printf '[{"Config":"%s","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$cfg" "$TAG" \
  >"$work/manifest.json"
tar -C "$work" -cf - manifest.json "$cfg" layer.tar
