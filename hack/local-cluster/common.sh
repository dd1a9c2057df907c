# shellcheck shell=bash
# shellcheck disable=SC2034  # settings used by the other sourced files
# Shared settings and helpers of hack/local-cluster.sh (sourced, not run).
#
# Everything the local cluster creates lives in one state directory, one network namespace and a few
# well-known host directories that upstream components hard-code (recorded in $STATE/created so that
# `down` removes exactly what `up` created).

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.8}
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
export K8S_VERSION ETCD_VERSION CONTAINERD_VERSION

CACHE=${SNN_DRA_CACHE:-$HOME/.cache/snn-dra}/local-cluster
K8S_BIN=$CACHE/bin/k8s-$K8S_VERSION
TOOLS=$CACHE/bin/tools

# Short paths on purpose: unix socket paths under the state dir must stay below 108 bytes.
STATE=${SNN_DRA_LOCAL_STATE:-/var/lib/snn-dra-local}
NETNS=${SNN_DRA_LOCAL_NETNS:-snn-dra-local}
# A /30 on a veth pair: .1 on the host side, .2 (the node IP, the API server's address) inside the netns.
LINK_NET=${SNN_DRA_LOCAL_LINK_NET:-10.203.0}
HOST_IP=$LINK_NET.1
NODE_IP=$LINK_NET.2
HOST_IF=snl-host
NODE_IF=snl-node
API_PORT=6443
API_URL=https://$NODE_IP:$API_PORT
NODE_NAME=${SNN_DRA_LOCAL_NODE_NAME:-snn-dra-local}
CONTEXT=snn-dra-local
SERVICE_CIDR=10.0.0.0/24
API_SERVICE_IP=10.0.0.1
POD_CIDR=10.244.0.0/24
CNI_BRIDGE=snl-cni0
KUBELET_ROOT=/var/lib/kubelet
# Non-default in 1.34 (alpha), on by default in 1.36/1.37: setting them keeps one list for every version.
FEATURE_GATES=DRAPartitionableDevices=true,DRAConsumableCapacity=true,DRADeviceTaints=true
# images.sh's busybox, and the name deploy/demo's pods give it.
BUSYBOX_REF=localhost/snn-dra/busybox:local
DEMO_BUSYBOX_REF=docker.io/library/busybox:1.36
STEP_TIMEOUT=${SNN_DRA_LOCAL_TIMEOUT:-120}

PKI=$STATE/pki
LOGS=$STATE/log
PIDS=$STATE/pids
KUBECONFIG_FILE=$STATE/kubeconfig
AUDIT_LOG=$LOGS/audit.log
CONTAINERD_SOCK=$STATE/containerd/containerd.sock
CREATED_LIST=$STATE/created

T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
step() { printf '==> [%4ds] %s\n' "$(elapsed)" "$*" >&2; }
note() { printf '           %s\n' "$*" >&2; }
die() {
  echo "error: $*" >&2
  exit 1
}

kubectl_local() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
# nsenter, not `ip netns exec`: the latter also unshares the mount namespace and remounts /sys (hiding
# /sys/fs/cgroup), so the kubelet's volume mounts would be invisible to containerd and to the host.
in_netns() { nsenter --net="/run/netns/$NETNS" -- "$@"; }
ctr_local() { "$TOOLS/ctr-$CONTAINERD_VERSION" --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# wait_for SECONDS WHAT COMMAND...: polls COMMAND (quietly) until it succeeds; fails with WHAT after SECONDS.
wait_for() {
  local timeout=$1 what=$2 deadline
  shift 2
  deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "error: timed out after ${timeout}s waiting for $what" >&2
      return 1
    fi
    sleep 0.5
  done
}

# remember_created PATH: PATH did not exist before `up`, so `down` removes it.
remember_created() {
  if [ ! -e "$1" ]; then
    mkdir -p "$1"
    echo "$1" >>"$CREATED_LIST"
  fi
}

# ---- processes: started inside the netns, tracked by pid file (pid and kernel start time) -------------------
proc_start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

# start_process NAME COMMAND...: runs COMMAND inside the netns in its own session, output to $LOGS/NAME.log.
start_process() {
  local name=$1 pid
  shift
  # No job control here, so the child is not a process group leader and setsid execs without forking:
  # $! is the component itself (nsenter and setsid both exec).
  nsenter --net="/run/netns/$NETNS" -- setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid $(proc_start_time "$pid")" >"$PIDS/$name.pid"
}

# pid_of NAME: the live pid of a component this cluster started, or nothing.
pid_of() {
  local file=$PIDS/$1.pid pid start
  [ -f "$file" ] || return 0
  read -r pid start <"$file" || return 0
  [ -n "$pid" ] && [ "$(proc_start_time "$pid")" = "$start" ] && echo "$pid"
  return 0
}

# stop_pid PID GRACE: SIGTERM, then SIGKILL after GRACE seconds; waits until it is gone.
stop_pid() {
  local pid=$1 grace=$2 start i
  start=$(proc_start_time "$pid")
  [ -n "$start" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < grace * 10; i++)); do
    [ "$(proc_start_time "$pid")" = "$start" ] || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    [ "$(proc_start_time "$pid")" = "$start" ] || return 0
    sleep 0.1
  done
  echo "warning: process $pid did not exit after SIGKILL" >&2
}

# require_alive NAME: fails with the tail of the component's log when it has exited.
require_alive() {
  if [ -z "$(pid_of "$1")" ]; then
    echo "error: $1 exited; last lines of $LOGS/$1.log:" >&2
    tail -n 25 "$LOGS/$1.log" >&2 || true
    return 1
  fi
}

# wait_healthy NAME WHAT COMMAND...: like wait_for, but stops early (with the log) if the component died.
wait_healthy() {
  local name=$1 what=$2 deadline
  shift 2
  deadline=$(( $(date +%s) + STEP_TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    require_alive "$name"
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "error: $name not $what after ${STEP_TIMEOUT}s; last lines of $LOGS/$name.log:" >&2
      tail -n 25 "$LOGS/$name.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
}
