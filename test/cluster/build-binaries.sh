#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager, kube-scheduler and kubelet from
# Debian's `kubernetes` source package (1.20), once; later runs reuse the cache.
# Usage: build-binaries.sh [CACHE_DIR]   (default ~/.cache/byok8s-cluster)
set -euo pipefail
CACHE=${1:-${BYOK8S_CLUSTER_CACHE:-$HOME/.cache/byok8s-cluster}}
BIN=$CACHE/bin
WANT=(kube-apiserver kube-controller-manager kube-scheduler kubelet)

have_all() { for b in "${WANT[@]}"; do [ -x "$BIN/$b" ] || return 1; done; }
if have_all; then echo "binaries cached in $BIN"; exit 0; fi
# One build at a time (test/setup.sh starts one in the background; up.sh waits).
mkdir -p "$CACHE"; exec 9>"$CACHE/build-binaries.lock"; flock 9
if have_all; then echo "binaries cached in $BIN"; exit 0; fi

command -v go >/dev/null || { echo "go missing: apt-get install golang-go" >&2; exit 1; }
mkdir -p "$CACHE/src" "$CACHE/apt/lists/partial" "$CACHE/apt/parts" "$BIN"

# A private apt configuration with a deb-src entry for the system's own Debian
# mirror (read from its sources; the system configuration is left untouched).
uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$uri" ] || uri=$(awk '/^deb / && $3 ~ /bookworm$/ {print $2; exit}' /etc/apt/sources.list)
printf 'deb-src %s bookworm main\n' "$uri" > "$CACHE/apt/parts/src.list"
APT=(-o Dir::Etc::SourceParts="$CACHE/apt/parts" -o Dir::Etc::SourceList=/dev/null
     -o Dir::State::Lists="$CACHE/apt/lists")
cd "$CACHE/src"
if ! ls kubernetes_*.dsc >/dev/null 2>&1; then
  apt-get "${APT[@]}" update -qq
  apt-get "${APT[@]}" source --download-only kubernetes
fi
tree=$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)
if [ -z "$tree" ]; then
  dpkg-source -x --skip-patches kubernetes_*.dsc >/dev/null
  tree=$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)
fi
cd "$tree"
mkdir -p .go/src/k8s.io
ln -sfn "$PWD" .go/src/k8s.io/kubernetes
GOPATH=$PWD/.go CGO_ENABLED=0 GOFLAGS=-mod=vendor \
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet"
for b in "${WANT[@]}"; do cp "_output/local/bin/linux/amd64/$b" "$BIN/$b" 2>/dev/null \
  || cp "$(find _output -type f -name "$b" | head -n 1)" "$BIN/$b"; done
# The pause image's binary, from the same tree.
gcc -static -O2 -o "$BIN/pause" build/pause/linux/pause.c
have_all && echo "built into $BIN"
