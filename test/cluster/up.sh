#!/usr/bin/env bash
# Start a real single-node Kubernetes on this machine (no Docker, no internet):
# etcd, containerd + runc + CNI bridge from Debian; the control plane and kubelet
# built from Debian's kubernetes source (build-binaries.sh, cached).
# Also builds (cached) and loads the job image; its tag is written to STATE/job-image.
# Usage: up.sh [STATE_DIR]; prints the kubeconfig path on stdout. Stop with down.sh.
# Pods get a bridge without masquerade: they reach only this machine.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${BYOK8S_CLUSTER_CACHE:-$HOME/.cache/byok8s-cluster}
STATE=${1:-${BYOK8S_CLUSTER_STATE:-/tmp/byok8s-cluster}}
BIN=$CACHE/bin
POD_CIDR=${BYOK8S_POD_CIDR:-10.244.0.0/24}
GATEWAY=${POD_CIDR%.*}.1  # the bridge's address: node IP, and where pods reach host services
BRIDGE=byok8s0
NODE=byok8s-node

log() { echo "up.sh: $*" >&2; }
bash "$HERE/build-binaries.sh" "$CACHE" >&2

mkdir -p "$STATE"/{pki,etcd,logs,pids,kubelet,containerd,cni}
cd "$STATE"
# The job image builds while the control plane starts (cold: minutes; warm: cached).
JOB_TAG=byok8s-job:$(bash "$HERE/job-image.sh" --key)
bash "$HERE/job-image.sh" "$JOB_TAG" >job-image.path 2>logs/job-image.log &
image_build=$!

start() {  # start NAME CMD...: run in the background, record the pid
  local name=$1; shift
  if [ -f "pids/$name" ] && kill -0 "$(cat "pids/$name")" 2>/dev/null; then return; fi
  "$@" >"logs/$name.log" 2>&1 &
  echo $! >"pids/$name"
}

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

cat >cni/10-byok8s.conflist <<CNI
{"cniVersion": "0.4.0", "name": "byok8s", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
CNI
cat >containerd.toml <<CTR
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$STATE/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "k8s.gcr.io/pause:3.2"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
CTR

start etcd etcd --data-dir "$STATE/etcd" --listen-client-urls http://127.0.0.1:2379 \
  --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380
start containerd containerd --config "$STATE/containerd.toml"
wait_for etcd 30 curl -sf http://127.0.0.1:2379/health
start kube-apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port=6443 --insecure-port=0 \
  --tls-cert-file=pki/apiserver.crt --tls-private-key-file=pki/apiserver.key \
  --token-auth-file=pki/tokens.csv --authorization-mode=RBAC \
  --service-account-key-file=pki/sa.pub --service-account-signing-key-file=pki/sa.key \
  --service-account-issuer=https://kubernetes.default.svc \
  --disable-admission-plugins=ServiceAccount --service-cluster-ip-range=10.96.0.0/24 \
  --kubelet-preferred-address-types=InternalIP --allow-privileged=true
wait_for kube-apiserver 60 curl -skf -H "Authorization: Bearer $TOKEN" https://127.0.0.1:6443/readyz
start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig=kubeconfig \
  --controllers='*,-serviceaccount-token' --leader-elect=false --bind-address=127.0.0.1 \
  --port=0 --use-service-account-credentials=false
start kube-scheduler "$BIN/kube-scheduler" --kubeconfig=kubeconfig --leader-elect=false \
  --bind-address=127.0.0.1 --port=0
wait_for containerd 30 ctr --address "$STATE/containerd.sock" version

# The pause image: the static binary built from the same tree, as one layer.
images() { ctr --address "$STATE/containerd.sock" -n k8s.io images ls -q; }
if ! images | grep -x 'k8s.gcr.io/pause:3.2' >/dev/null; then
  bash "$HERE/pack-image.sh" "$BIN/pause" k8s.gcr.io/pause:3.2 /pause | \
    ctr --address "$STATE/containerd.sock" -n k8s.io images import - >&2
fi

# The bridge exists before the first pod so the node can use its address (a node
# IP may not be loopback); the CNI bridge plugin adopts it.
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
  ip addr add "$GATEWAY/${POD_CIDR#*/}" dev "$BRIDGE"
fi
ip link set "$BRIDGE" up
echo "$BRIDGE" >bridge

start kubelet "$BIN/kubelet" --kubeconfig=kubeconfig --container-runtime=remote \
  --container-runtime-endpoint="unix://$STATE/containerd.sock" --cgroup-driver=cgroupfs \
  --cgroups-per-qos=false --enforce-node-allocatable= --fail-swap-on=false --eviction-hard= \
  --root-dir="$STATE/kubelet" --hostname-override=$NODE --node-ip="$GATEWAY" \
  --address="$GATEWAY" --read-only-port=0 --pod-cidr="$POD_CIDR" \
  --image-gc-high-threshold=100 --image-gc-low-threshold=99
wait_for "node $NODE" 90 sh -c \
  "KUBECONFIG=$STATE/kubeconfig kubectl get node $NODE 2>/dev/null | grep -q ' Ready'"

if ! wait "$image_build"; then log "job image build failed; see $STATE/logs/job-image.log"; exit 1; fi
if ! images | grep -x "docker.io/library/$JOB_TAG" >/dev/null; then
  ctr --address "$STATE/containerd.sock" -n k8s.io images import "$(cat job-image.path)" >&2
fi
echo "$JOB_TAG" >job-image
# Tool images (Debian packages, no Python) for rules with their own container:.
grep -v '^#' "$HERE/tool-images.txt" | while read -r tag packages; do
  [ -n "$tag" ] || continue
  if ! images | grep -x "docker.io/$tag" >/dev/null; then
    # shellcheck disable=SC2086
    ctr --address "$STATE/containerd.sock" -n k8s.io images import \
      "$(bash "$HERE/tool-image.sh" "$tag" $packages)" >&2
  fi
done
echo "$GATEWAY" >gateway
echo "$STATE/kubeconfig"
