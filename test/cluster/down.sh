#!/usr/bin/env bash
# Stop everything up.sh started (by pid), every node's pods' containers included.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/nodes.sh"
STATE=${1:-${BYOK8S_CLUSTER_STATE:-/tmp/byok8s-cluster}}
[ -d "$STATE/pids" ] || exit 0
for dir in "$STATE"/nodes/*/; do  # the extra nodes first
  k=$(basename "$dir")
  if [[ $k =~ ^[0-9]+$ ]]; then node_stop "$STATE" "$k"; fi
done
for name in kubelet kube-scheduler kube-controller-manager kube-apiserver; do
  pid=$(recorded "$STATE/pids/$name") && kill "$pid" 2>/dev/null
done
if [ -S "$STATE/containerd.sock" ]; then
  for task in $(ctr --address "$STATE/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$STATE/containerd.sock" -n k8s.io tasks kill -s SIGKILL "$task" 2>/dev/null
  done
fi
for name in containerd etcd; do
  pid=$(recorded "$STATE/pids/$name") && kill "$pid" 2>/dev/null
done
sleep 2
# Pod shims outlive containerd; they are this cluster's if they use its socket.
pkill -9 -f "containerd-shim-runc-v2 .*-address $STATE/containerd.sock" 2>/dev/null
for pidfile in "$STATE"/pids/*; do
  [ -f "$pidfile" ] || continue
  pid=$(recorded "$pidfile") && kill -9 "$pid" 2>/dev/null
  rm -f "$pidfile"
done
mountpoint -q "$STATE/kubelet" 2>/dev/null || true
grep " $STATE/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
# The bridges, only those this state's up.sh made (another cluster may be using one).
for file in "$STATE/bridge" "$STATE"/nodes/*/bridge; do
  [ -f "$file" ] && ip link del "$(cat "$file")" 2>/dev/null; rm -f "$file"
done
exit 0
