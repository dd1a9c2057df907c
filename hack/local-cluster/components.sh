# shellcheck shell=bash
# The network namespace and the cluster's processes (sourced by hack/local-cluster.sh).

# The cluster's own network: a netns with lo and one end of a veth pair (the node IP); the other end, on the
# host, gets the /30's other address, so the host reaches the API server and nothing in the netns reaches out
# (no default route, no NAT).
make_network() {
  local used
  used=$(ip -o -4 addr show | awk -v net="$LINK_NET." 'index($4, net) == 1 {print $2}')
  [ -z "$used" ] || die "addresses in $LINK_NET.0/30 are already used on the host (interface $used); pick another /30 with SNN_DRA_LOCAL_LINK_NET=10.x.y"
  ip netns add "$NETNS"
  ip -n "$NETNS" link set lo up
  ip link add "$HOST_IF" type veth peer name "$NODE_IF" netns "$NETNS"
  ip addr add "$HOST_IP/30" dev "$HOST_IF"
  ip link set "$HOST_IF" up
  ip -n "$NETNS" addr add "$NODE_IP/30" dev "$NODE_IF"
  ip -n "$NETNS" link set "$NODE_IF" up
}

healthz_in_netns() { in_netns curl -fsSk --max-time 2 "$1"; }

start_etcd() {
  mkdir -p "$STATE/etcd"
  start_process etcd "$TOOLS/etcd-$ETCD_VERSION" \
    --name=snn-dra-local --data-dir="$STATE/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=snn-dra-local=http://127.0.0.1:2380 \
    --unsafe-no-fsync --log-level=warn
  wait_healthy etcd healthy healthz_in_netns http://127.0.0.1:2379/health
}

start_apiserver() {
  start_process kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port="$API_PORT" --advertise-address="$NODE_IP" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true \
    --feature-gates="$FEATURE_GATES" \
    --audit-policy-file="$STATE/audit-policy.yaml" --audit-log-path="$AUDIT_LOG" \
    --audit-log-maxsize=200 --audit-log-maxbackup=1
  wait_healthy kube-apiserver ready kubectl_local get --raw /readyz
}

start_controller_manager() {
  local kc=$STATE/controller-manager.kubeconfig
  start_process kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --leader-elect=false --controllers='*' \
    --use-service-account-credentials \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --feature-gates="$FEATURE_GATES"
}

start_scheduler() {
  local kc=$STATE/scheduler.kubeconfig
  start_process kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --leader-elect=false --feature-gates="$FEATURE_GATES"
}

start_containerd() {
  PATH=$STATE/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    start_process containerd "$TOOLS/containerd-$CONTAINERD_VERSION" --config "$STATE/containerd/config.toml"
  wait_healthy containerd serving ctr_local version
}

# image_present REF: containerd's k8s.io namespace has REF. (Listed into a variable first: with pipefail, a
# `grep -q` that stops reading early would fail the pipeline by SIGPIPE.)
image_present() {
  local all
  all=$(ctr_local images ls -q 2>/dev/null)
  grep -qxF "$1" <<<"$all"
}

# import_images: every image images.sh built (one "<ref> <oci-archive>" per line), into containerd's k8s.io
# namespace, where the kubelet's CRI looks.
import_images() {
  local ref archive log=$LOGS/ctr-import.log
  while read -r ref archive; do
    [ -n "$ref" ] || continue
    note "importing $ref"
    ctr_local images import --local "$archive" >>"$log" 2>&1 || {
      tail -n 5 "$log" >&2
      die "ctr could not import $archive (log: $log)"
    }
    if ! image_present "$ref"; then
      # An archive that names its image by tag only (org.opencontainers.image.ref.name) needs the repository.
      ctr_local images import --local --base-name "${ref%:*}" "$archive" >>"$log" 2>&1 || true
    fi
    image_present "$ref" ||
      die "importing $archive did not create the image $ref (images there: $(ctr_local images ls -q 2>/dev/null | tr '\n' ' '))"
  done <"$STATE/images.txt"
  # deploy/demo's pods name busybox:1.36, which no registry can deliver here: the local busybox image
  # (Debian's busybox-static) answers to that name too, so the demo runs unchanged.
  if grep -q "^$BUSYBOX_REF " "$STATE/images.txt"; then
    ctr_local images tag --force "$BUSYBOX_REF" "$DEMO_BUSYBOX_REF" >>"$log" 2>&1
    note "tagged $BUSYBOX_REF as $DEMO_BUSYBOX_REF (the image deploy/demo uses)"
  fi
}

start_kubelet() {
  remember_created "$KUBELET_ROOT"
  touch "$KUBELET_ROOT/.snn-dra-local"
  start_process kubelet "$K8S_BIN/kubelet" \
    --config="$STATE/kubelet.yaml" --kubeconfig="$STATE/kubelet.kubeconfig" \
    --root-dir="$KUBELET_ROOT" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"
  wait_healthy kubelet healthy healthz_in_netns http://127.0.0.1:10248/healthz
}

start_kube_proxy() {
  start_process kube-proxy "$K8S_BIN/kube-proxy" --config="$STATE/kube-proxy.yaml"
  wait_healthy kube-proxy "routing the kubernetes Service" service_routed
}

# service_routed: kube-proxy has programmed the API server's Service IP (what in-cluster clients use).
service_routed() { in_netns iptables -t nat -S KUBE-SERVICES 2>/dev/null | grep "default/kubernetes:https" >/dev/null; }

node_ready() {
  [ "$(kubectl_local get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
