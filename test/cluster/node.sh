#!/usr/bin/env bash
# One node of the local cluster (up.sh --nodes N).
# Usage: node.sh stop K [STATE_DIR]: stop node K at once, as a machine that dies
#   would (its kubelet, every container, their shims and its containerd: SIGKILL);
#   its Node stays in the cluster, NotReady. `up.sh STATE_DIR --nodes N` starts it again.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/nodes.sh"
if [ "${1:-}" != stop ] || ! [[ ${2:-} =~ ^[0-9]+$ ]]; then
  echo "node.sh: usage: node.sh stop K [STATE_DIR]" >&2; exit 2
fi
STATE=${3:-${BYOK8S_CLUSTER_STATE:-/tmp/byok8s-cluster}}
[ -d "$(node_dir "$STATE" "$2")" ] || { echo "node.sh: no node $2 in $STATE" >&2; exit 2; }
node_stop "$STATE" "$2"
