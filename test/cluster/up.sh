#!/usr/bin/env bash
# Start a real Kubernetes on this machine (no Docker, no internet): etcd,
# containerd + runc + CNI bridge from Debian; the control plane and kubelet built
# from Debian's kubernetes source (build-binaries.sh, cached). One node by default;
# --nodes N starts N, each with its own containerd, kubelet, bridge and pod subnet
# (routed on this machine), node name and labels. Run on a running cluster, it
# starts only what is not running (so --nodes adds nodes to it).
# Also builds (cached) and loads the job image; its tag is written to STATE/job-image.
# Usage: up.sh [STATE_DIR] [--nodes N]; prints the kubeconfig path on stdout.
# Stop with down.sh (one node: node.sh stop K). Exit 2: a bad --nodes.
# Pods get a bridge without masquerade: they reach only this machine.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${BYOK8S_CLUSTER_CACHE:-$HOME/.cache/byok8s-cluster}
STATE=${BYOK8S_CLUSTER_STATE:-/tmp/byok8s-cluster}
NODES=1
while [ $# -gt 0 ]; do
  case $1 in
    --nodes) NODES=${2:-}; shift 2 || { echo "up.sh: --nodes needs a number" >&2; exit 2; } ;;
    --nodes=*) NODES=${1#--nodes=}; shift ;;
    -*) echo "up.sh: unknown option $1; usage: up.sh [STATE_DIR] [--nodes N]" >&2; exit 2 ;;
    *) STATE=$1; shift ;;
  esac
done
BIN=$CACHE/bin
POD_CIDR=${BYOK8S_POD_CIDR:-10.244.0.0/24}  # node 1's; node K's is the K-th /24 after it
GATEWAY=${POD_CIDR%.*}.1  # the bridge's address: node IP, and where pods reach host services
NODE_WAIT=${BYOK8S_NODE_WAIT:-90}  # seconds a node has to become Ready
# Node health, tuned so that a lost node is seen in seconds (real clusters: the
# kubelet posts every 10 s, its lease lasts 40 s, the controller waits 40 s).
STATUS_EVERY=4s LEASE_SECONDS=16 GRACE=16s

log() { echo "up.sh: $*" >&2; }
source "$HERE/nodes.sh"
max=$(max_nodes "$STATE")
if ! [[ $NODES =~ ^[0-9]+$ ]] || [ "$NODES" -lt 1 ] || [ "$NODES" -gt "$max" ]; then
  log "--nodes ${NODES:-(none)}: this machine holds 1 to $max nodes ($(machine_room "$STATE")); use --nodes 1..$max"
  exit 2
fi
bash "$HERE/build-binaries.sh" "$CACHE" >&2

mkdir -p "$STATE"/{pki,etcd,logs,pids,kubelet,containerd,cni}
cd "$STATE"
# The job image builds while the control plane starts (cold: minutes; warm: cached).
JOB_TAG=byok8s-job:$(bash "$HERE/job-image.sh" --key)
bash "$HERE/job-image.sh" "$JOB_TAG" >job-image.path 2>logs/job-image.log &
image_build=$!

STARTED=() BRIDGES=()  # what this run started: stopped again if it fails
start() {  # start NAME CMD...: run in the background, record the pid
  local name=$1; shift
  if recorded "pids/$name" >/dev/null; then return; fi
  "$@" >"logs/$name.log" 2>&1 &
  record "pids/$name" $!
  STARTED+=("$name")
}
undo() {  # stop what this run started, the newest first
  local i
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_pid "$STATE" "${STARTED[$i]}"; done
  for i in "${BRIDGES[@]}"; do ip link del "$i" 2>/dev/null || true; done
}
on_exit() { local rc=$?; [ "$rc" -eq 0 ] || undo; exit "$rc"; }
trap on_exit EXIT

wait_for() {  # wait_for WHAT SECONDS CMD...
  local what=$1 limit=$2; shift 2
  for _ in $(seq "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  log "$what did not come up; see $STATE/logs"; return 1
}

if [ ! -f pki/apiserver.crt ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=byok8s-apiserver \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout pki/apiserver.key -out pki/apiserver.crt 2>/dev/null
  openssl genrsa -out pki/sa.key 2048 2>/dev/null
  openssl rsa -in pki/sa.key -pubout -out pki/sa.pub 2>/dev/null
  echo "$(openssl rand -hex 16),admin,admin,system:masters" >pki/tokens.csv
fi
# A second user with no rights of its own (RBAC): tests grant it what they test.
grep -q ',limited,' pki/tokens.csv || echo "$(openssl rand -hex 16),limited,limited" >>pki/tokens.csv
TOKEN=$(grep ',admin,' pki/tokens.csv | cut -d, -f1)
cat >kubeconfig <<KC
apiVersion: v1
kind: Config
current-context: byok8s
clusters:
- name: byok8s
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
contexts:
- name: byok8s
  context: {cluster: byok8s, user: admin, namespace: default}
users:
- name: admin
  user: {token: "$TOKEN"}
KC
chmod 600 kubeconfig pki/*
cat >kubelet.yaml <<KCFG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
nodeLeaseDurationSeconds: $LEASE_SECONDS
# As the kubelet's flags have it (a config file's defaults are stricter): the API
# server, which has no client certificate for it, reads pod logs.
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
KCFG

# Every request's metadata (who, verb, resource; not bodies) goes to audit.log:
# bench/ counts each client's requests by its user agent from it.
cat >audit-policy.yaml <<AUDIT
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules: [{level: Metadata}]
AUDIT

start etcd etcd --data-dir "$STATE/etcd" --listen-client-urls http://127.0.0.1:2379 \
  --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380
wait_for etcd 30 curl -sf http://127.0.0.1:2379/health
start kube-apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port=6443 --insecure-port=0 \
  --tls-cert-file=pki/apiserver.crt --tls-private-key-file=pki/apiserver.key \
  --token-auth-file=pki/tokens.csv --authorization-mode=RBAC \
  --service-account-key-file=pki/sa.pub --service-account-signing-key-file=pki/sa.key \
  --service-account-issuer=https://kubernetes.default.svc \
  --disable-admission-plugins=ServiceAccount --service-cluster-ip-range=10.96.0.0/24 \
  --kubelet-preferred-address-types=InternalIP --allow-privileged=true \
  --audit-policy-file=audit-policy.yaml --audit-log-path="$STATE/audit.log" \
  --audit-log-maxsize=1000 --audit-log-maxbackup=1
wait_for kube-apiserver 60 curl -skf -H "Authorization: Bearer $TOKEN" https://127.0.0.1:6443/readyz
start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig=kubeconfig \
  --controllers='*,-serviceaccount-token' --leader-elect=false --bind-address=127.0.0.1 \
  --port=0 --use-service-account-credentials=false \
  --node-monitor-period=1s --node-monitor-grace-period=$GRACE
start kube-scheduler "$BIN/kube-scheduler" --kubeconfig=kubeconfig --leader-elect=false \
  --bind-address=127.0.0.1 --port=0

# Images for every node's containerd: the pause image (the static binary built
# from the same tree, as one layer), the job image, the tool images (Debian
# packages, no Python) for rules with their own container:.
load_images() {  # load_images SOCKET
  local sock=$1 tag packages
  images() { ctr --address "$sock" -n k8s.io images ls -q; }
  if ! images | grep -x 'k8s.gcr.io/pause:3.2' >/dev/null; then
    bash "$HERE/pack-image.sh" "$BIN/pause" k8s.gcr.io/pause:3.2 /pause | \
      ctr --address "$sock" -n k8s.io images import - >&2
  fi
  if ! images | grep -x "docker.io/library/$JOB_TAG" >/dev/null; then
    ctr --address "$sock" -n k8s.io images import "$(cat job-image.path)" >&2
  fi
  grep -v '^#' "$HERE/tool-images.txt" | while read -r tag packages; do
    [ -n "$tag" ] || continue
    if ! images | grep -x "docker.io/$tag" >/dev/null; then
      # shellcheck disable=SC2086
      ctr --address "$sock" -n k8s.io images import \
        "$(bash "$HERE/tool-image.sh" "$tag" $packages)" >&2
    fi
  done
}

node_up() {  # node_up K: start node K (its containerd, bridge and kubelet) and wait for it
  local k=$1 dir name cidr gw bridge net prefix="" ns=""
  name=$(node_name "$k") bridge=$(node_bridge "$k") cidr=$(node_cidr "$POD_CIDR" "$k")
  gw=${cidr%.*}.1 dir=$(node_dir "$STATE" "$k") net=byok8s
  if [ "$k" -gt 1 ]; then
    net=byok8s-$k prefix=node-$k-
    # Its own mount namespace, so that its kubelet and containerd have their own
    # /var/log/pods (a kubelet removes the pod logs of pods it does not know).
    mkdir -p "$dir"/{kubelet,containerd,cni,log/pods,log/containers}
    start "${prefix}mounts" unshare --mount --propagation private -- sleep infinity
    ns=$(recorded "pids/${prefix}mounts") || { log "the mount namespace of $name ended at once"; return 1; }
    for _ in $(seq 50); do [ "$(readlink "/proc/$ns/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] && break; sleep 0.1; done
    nsenter --target "$ns" --mount -- sh -c "grep -q ' /var/log/pods ' /proc/self/mounts || {
      mkdir -p /var/log/pods /var/log/containers
      mount --bind '$dir/log/pods' /var/log/pods
      mount --bind '$dir/log/containers' /var/log/containers; }"
  fi
  cat >"$dir/cni/10-byok8s.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "$net", "plugins": [
  {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$cidr"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
CNI
  cat >"$dir/containerd.toml" <<CTR
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
[grpc]
  address = "$dir/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "k8s.gcr.io/pause:3.2"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
CTR
  local enter=()
  [ -z "$ns" ] || enter=(nsenter --target "$ns" --mount --)
  start "${prefix}containerd" "${enter[@]}" containerd --config "$dir/containerd.toml"
  wait_for "containerd of $name" 30 ctr --address "$dir/containerd.sock" version
  # The bridge exists before the first pod so the node can use its address (a node
  # IP may not be loopback); the CNI bridge plugin adopts it.
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    BRIDGES+=("$bridge")
    ip addr add "$gw/${cidr#*/}" dev "$bridge"
  fi
  ip link set "$bridge" up
  echo "$bridge" >"${dir}/bridge"
  load_images "$dir/containerd.sock"
  # shellcheck disable=SC2086
  start "${prefix}kubelet" "${enter[@]}" "$BIN/kubelet" --kubeconfig="$STATE/kubeconfig" \
    --config="$STATE/kubelet.yaml" --container-runtime=remote \
    --container-runtime-endpoint="unix://$dir/containerd.sock" --cgroup-driver=cgroupfs \
    --cgroups-per-qos=false --enforce-node-allocatable= --fail-swap-on=false --eviction-hard= \
    --root-dir="$dir/kubelet" --cert-dir="$dir/kubelet/pki" --hostname-override="$name" \
    --node-ip="$gw" --address="$gw" --read-only-port=0 --pod-cidr="$cidr" \
    --healthz-port=0 --node-status-update-frequency=$STATUS_EVERY \
    --node-labels="byok8s.io/node=$k" \
    --image-gc-high-threshold=100 --image-gc-low-threshold=99 ${BYOK8S_KUBELET_ARGS:-}
}

node_ready() {  # node_ready K: wait for node K to be Ready; its kubelet's log tail if not
  local k=$1 name pid
  name=$(node_name "$k")
  # A kubelet that ended already (a bad flag, say) has no pid: its log says why.
  pid=$(recorded "pids/$(node_prefix "$k")kubelet") || pid=
  for _ in $(seq "$NODE_WAIT"); do
    KUBECONFIG=$STATE/kubeconfig kubectl get node "$name" 2>/dev/null | grep -q ' Ready' && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  local file
  file=$STATE/logs/$(node_prefix "$k")kubelet.log
  log "node $name did not become Ready in $NODE_WAIT s; its kubelet's last errors ($file):"
  # klog's errors and fatal lines (a fatal one ends in a stack dump), else the tail
  { grep -E '^[EF][0-9]{4} ' "$file" || tail -n 15 "$file"; } | tail -n 10 | sed 's/^/    /' >&2
  return 1
}

if ! wait "$image_build"; then log "job image build failed; see $STATE/logs/job-image.log"; exit 1; fi
for k in $(seq "$NODES"); do node_up "$k"; done
for k in $(seq "$NODES"); do node_ready "$k"; done
echo "$JOB_TAG" >job-image
echo "$GATEWAY" >gateway
echo "$STATE/kubeconfig"
