# shellcheck shell=bash
# `down`: stops what `up` started and removes what it created (sourced by hack/local-cluster.sh).
#
# Order matters: the kubelet first (it would restart containers), then the pods' containers (through
# containerd, then whatever is still in the pods' cgroups), then the control plane and containerd by pid
# file, then anything left in the netns (the runc shims). Only then are the mounts gone for good, and the
# netns and directories can be removed.

# The components in start order; stopped in reverse.
COMPONENTS="etcd kube-apiserver containerd kube-controller-manager kube-scheduler kubelet kube-proxy"

stop_component() {
  local pid
  pid=$(pid_of "$1")
  [ -n "$pid" ] || return 0
  note "stopping $1 (pid $pid)"
  stop_pid "$pid" "$2"
}

# created_paths: directories that `up` created outside the state dir (newest first), and "cgroup:kubepods"
# when the kubelet's pod cgroups are the cluster's. The kubelet's root dir carries a marker file, so it is found
# even when the state dir is gone. down_cluster reads the list once, before the state's tmpfs is unmounted.
CREATED_PATHS=
created_paths() {
  if [ -n "$CREATED_PATHS" ]; then
    echo "$CREATED_PATHS"
    return 0
  fi
  {
    if [ -f "$CREATED_LIST" ]; then tac "$CREATED_LIST"; fi
    if [ -f "$KUBELET_ROOT/.snn-dra-local" ]; then echo "$KUBELET_ROOT"; fi
  } | awk '!seen[$0]++'
}

owns_kubepods() { created_paths | grep -x "cgroup:kubepods" >/dev/null; }

# kubepods_dirs: the kubelet's pod cgroups in every hierarchy (cgroup v1 controllers or the v2 tree).
kubepods_dirs() {
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$d" ] && echo "$d"
  done
  return 0
}

kill_pod_processes() {
  local id dir pid
  if [ -n "$(pid_of containerd)" ]; then
    for id in $(ctr_local tasks ls -q 2>/dev/null); do
      ctr_local tasks kill --all --signal SIGKILL "$id" >/dev/null 2>&1 || true
      ctr_local tasks delete --force "$id" >/dev/null 2>&1 || true
    done
  fi
  owns_kubepods || return 0
  # Whatever containerd could not stop: every process in the pods' cgroups, by pid.
  for dir in $(kubepods_dirs); do
    while read -r pid; do
      kill -KILL "$pid" 2>/dev/null || true
    done < <(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null)
  done
}

# mounts_under PREFIX...: mount points below any PREFIX, deepest first (mountinfo escapes spaces as \040).
mounts_under() {
  local prefix
  awk '{print $5}' /proc/self/mountinfo | while read -r m; do
    m=$(printf '%b' "$m")
    for prefix in "$@"; do
      case "$m" in "$prefix" | "$prefix"/*) echo "$m" ;; esac
    done
  done | sort -r -u
}

cleanup_prefixes() {
  realpath -m "$STATE"
  created_paths | grep -v '^cgroup:' | while read -r p; do realpath -m "$p"; done
}

unmount_all() {
  local m prefixes
  mapfile -t prefixes < <(cleanup_prefixes)
  # Twice: a lazy unmount of a parent can leave children visible for a moment.
  for _ in 1 2; do
    while read -r m; do
      [ -n "$m" ] || continue
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done < <(mounts_under "${prefixes[@]}")
  done
}

remove_cgroups() {
  local dir
  owns_kubepods || return 0
  for dir in $(kubepods_dirs); do
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# leftovers: what `down` should have removed and is still there (empty output = clean).
leftovers() {
  local name pid prefixes
  for name in $COMPONENTS; do
    pid=$(pid_of "$name")
    [ -z "$pid" ] || echo "process $name (pid $pid)"
  done
  if [ -e "/run/netns/$NETNS" ]; then
    echo "network namespace $NETNS"
  fi
  ! ip link show "$HOST_IF" >/dev/null 2>&1 || echo "interface $HOST_IF"
  mapfile -t prefixes < <(cleanup_prefixes)
  mounts_under "${prefixes[@]}" | sed 's/^/mount /'
  if owns_kubepods; then kubepods_dirs | sed 's/^/cgroup /'; fi
}

something_to_clean() {
  [ -d "$STATE" ] || [ -f "$KUBELET_ROOT/.snn-dra-local" ] || [ -e "/run/netns/$NETNS" ] || ip link show "$HOST_IF" >/dev/null 2>&1
}

down_cluster() {
  local name pid left path
  if ! something_to_clean; then
    step "nothing to stop: no state in $STATE and no network namespace $NETNS"
    return 0
  fi
  step "stopping the local cluster"
  CREATED_PATHS=$(created_paths)
  stop_component kubelet 15
  kill_pod_processes
  for name in kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd containerd; do
    stop_component "$name" 10
  done
  # The runc shims (started by containerd, so in its netns) and anything else still in the netns.
  if [ -e "/run/netns/$NETNS" ]; then
    for pid in $(ip netns pids "$NETNS" 2>/dev/null); do
      note "stopping leftover process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80))"
      stop_pid "$pid" 3
    done
  fi
  step "unmounting everything under $STATE and the directories the cluster created"
  unmount_all
  remove_cgroups
  if [ -e "/run/netns/$NETNS" ]; then
    ip netns delete "$NETNS"
  fi
  # Deleting the netns removes the veth pair, asynchronously; delete the host end too if it lingers.
  ip link delete "$HOST_IF" 2>/dev/null || true
  wait_for 10 "interface $HOST_IF to go" sh -c "! ip link show $HOST_IF" || true
  left=$(leftovers)
  if [ -n "$left" ]; then
    echo "error: down could not remove everything; still there:" >&2
    printf '  %s\n' "${left//$'\n'/$'\n'  }" >&2
    echo "state kept in $STATE for inspection; run 'hack/local-cluster.sh down' again" >&2
    return 1
  fi
  while read -r path; do
    case "$path" in cgroup:* | "") ;; *) rm -rf --one-file-system "$path" ;; esac
  done < <(created_paths)
  rm -rf --one-file-system "$STATE"
  left=$(
    while read -r path; do
      case "$path" in cgroup:* | "") ;; *) [ ! -e "$path" ] || echo "directory $path" ;; esac
    done < <(created_paths)
  )
  if [ -n "$left" ]; then
    echo "error: down could not remove: ${left//$'\n'/, }" >&2
    return 1
  fi
  step "stopped; no process, mount, cgroup, network namespace or state of the local cluster is left"
}
