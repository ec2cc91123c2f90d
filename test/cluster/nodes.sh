# shellcheck shell=bash
# The local cluster's nodes, for up.sh, down.sh and node.sh (sourced, not run).
# Node 1 is the first cluster's layout (STATE/containerd.sock, bridge byok8s0,
# BYOK8S_POD_CIDR); node K (2 and more) lives in STATE/nodes/K, with bridge
# byok8s<K-1> and the K-th /24 after node 1's.
MAX_NODES=8        # what the scripts are written for (bridges, subnets)
NODE_MEMORY_MIB=1024  # room a node takes: its kubelet and containerd, and its pods
NODE_DISK_GIB=4    # its images (the job image unpacks to about 2 GiB) and pods

node_name() { if [ "$1" -eq 1 ]; then echo byok8s-node; else echo "byok8s-node-$1"; fi; }
node_bridge() { echo "byok8s$(($1 - 1))"; }
node_prefix() { if [ "$1" -eq 1 ]; then echo ""; else echo "node-$1-"; fi; }
node_dir() { if [ "$2" -eq 1 ]; then echo "$1"; else echo "$1/nodes/$2"; fi; }
node_cidr() {  # node_cidr NODE1_CIDR K
  local base=${1%/*} a b c d
  IFS=. read -r a b c d <<<"$base"
  echo "$a.$b.$((c + $2 - 1)).$d/${1#*/}"
}

free_mib() { awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo; }
free_gib() {  # free_gib DIR: free disk where DIR is (or would be)
  local dir=$1
  until [ -d "$dir" ]; do dir=$(dirname "$dir"); done
  df -BG --output=avail "$dir" | tail -1 | tr -dc 0-9
}
machine_room() {  # what bounds the node count
  echo "$(free_mib) MiB memory free, $(free_gib "$1") GiB disk free for $1;" \
    "a node takes about $NODE_MEMORY_MIB MiB and $NODE_DISK_GIB GiB"
}

max_nodes() {  # max_nodes STATE: how many nodes this machine holds
  local mem disk n
  mem=$(free_mib) disk=$(free_gib "$1")
  n=$MAX_NODES
  [ $((mem / NODE_MEMORY_MIB)) -lt "$n" ] && n=$((mem / NODE_MEMORY_MIB))
  [ $((${disk:-0} / NODE_DISK_GIB)) -lt "$n" ] && n=$((${disk:-0} / NODE_DISK_GIB))
  echo "$n"
}

started_at() {  # started_at PID: when the process started, in clock ticks after boot
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'
}

record() {  # record FILE PID: a pid file, with the process's start to know it again by
  echo "$2 $(started_at "$2")" >"$1"
}

recorded() {  # recorded FILE: the pid in pid file FILE, if that process still runs
  # A process with another start is not the one recorded but one that got its pid
  # later (the recorded one died with the machine's last session, say). A file of
  # a pid alone (written before the start was recorded) is taken as it is.
  local pid at
  [ -f "$1" ] || return 1
  read -r pid at <"$1"
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [ -z "$at" ] || [ "$(started_at "$pid")" = "$at" ] || return 1
  echo "$pid"
}

stop_pid() {  # stop_pid STATE NAME: stop the process recorded as NAME (TERM, then KILL)
  local file=$1/pids/$2 pid
  [ -f "$file" ] || return 0
  if pid=$(recorded "$file") && kill "$pid" 2>/dev/null; then
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

node_stop() {  # node_stop STATE K: stop node K at once, as a machine that dies would
  local state=$1 k=$2 dir prefix sock task pid
  dir=$(node_dir "$state" "$k") prefix=$(node_prefix "$k") sock=$dir/containerd.sock
  # Its kubelet first (nothing restarts containers), then every container, shim and
  # its containerd, all with SIGKILL (what is gone already is no error).
  if pid=$(recorded "$state/pids/${prefix}kubelet"); then kill -9 "$pid" 2>/dev/null || true; fi
  if [ -S "$sock" ]; then
    for task in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      pid=$(ctr --address "$sock" -n k8s.io tasks ls 2>/dev/null | awk -v t="$task" '$1 == t {print $2}')
      [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true
    done
  fi
  if pid=$(recorded "$state/pids/${prefix}containerd"); then kill -9 "$pid" 2>/dev/null || true; fi
  pkill -9 -f "containerd-shim-runc-v2 .*-address $sock" 2>/dev/null || true
  for name in kubelet containerd mounts; do stop_pid "$state" "$prefix$name"; done
  # Its pods' addresses are free again (host-local IPAM keeps them in a file each).
  if [ "$k" -gt 1 ]; then rm -rf "/var/lib/cni/networks/byok8s-$k"; fi
  return 0
}
