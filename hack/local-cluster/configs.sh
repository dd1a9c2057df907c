# shellcheck shell=bash
# Configuration files of the local cluster's components (sourced by hack/local-cluster.sh).

# write_containerd_config SANDBOX_IMAGE
write_containerd_config() {
  local sandbox_image=$1
  mkdir -p "$STATE/containerd" "$STATE/cni/net.d" "$STATE/bin"
  # containerd finds its shim on PATH by its plain name; the cache keeps versioned names.
  ln -sf "$TOOLS/containerd-shim-runc-v2-$CONTAINERD_VERSION" "$STATE/bin/containerd-shim-runc-v2"
  cat >"$STATE/containerd/config.toml" <<EOF
version = 3
root = '$STATE/containerd/root'
state = '$STATE/containerd/state'
# NRI (its socket under /var/run/nri) and the /opt/containerd plugin are not used here.
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.internal.v1.opt']

[grpc]
  address = '$CONTAINERD_SOCK'

[ttrpc]
  address = '$STATE/containerd/containerd.sock.ttrpc'

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    # No registry is reachable: the sandbox image is imported locally and pinned (never garbage-collected).
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '$sandbox_image'

  [plugins.'io.containerd.cri.v1.runtime']
    # Our sandbox lacks CAP_SYS_RESOURCE: without this, runc fails writing /proc/self/oom_score_adj.
    restrict_oom_score_adj = true
    # CDI: how the snn-dra kubelet plugin hands devices and SNN_DRA_* environment to containers.
    enable_cdi = true
    cdi_spec_dirs = ['/etc/cdi', '/var/run/cdi']
    # Pod network namespaces under the state dir, so that "down" finds and removes every one.
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '$(command -v runc)'
          Root = '$STATE/runc'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = '$STATE/cni/net.d'
      max_conf_num = 1

  [plugins.'io.containerd.grpc.v1.cri']
    # kubectl exec/logs: the kubelet proxies to this streaming server on the netns loopback.
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
EOF
  # Pods: one bridge inside the cluster's netns, addresses from host-local. No masquerading and no route out
  # of the netns: pods reach the API server (the node IP) and each other, nothing else.
  cat >"$STATE/cni/net.d/10-snn-dra-local.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "snn-dra-local",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
}

# gates_yaml: FEATURE_GATES as the featureGates map of a component config file.
gates_yaml() {
  local gate
  echo "featureGates:"
  for gate in ${FEATURE_GATES//,/ }; do
    echo "  ${gate%%=*}: ${gate#*=}"
  done
}

write_kubelet_config() {
  cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# These hosts are cgroup v1; since 1.35 the kubelet refuses v1 unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
healthzBindAddress: 127.0.0.1
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $PKI/ca.crt
authorization:
  mode: Webhook
podLogsDir: $LOGS/pods
failSwapOn: false
# A shared dev machine: never evict pods because the disk or memory looks full.
evictionHard:
  memory.available: 50Mi
  nodefs.available: 1%
  imagefs.available: 1%
  nodefs.inodesFree: 1%
imageGCHighThresholdPercent: 100
resolvConf: /etc/resolv.conf
$(gates_yaml)
EOF
}

write_kube_proxy_config() {
  cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $STATE/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
# NodePorts only on the node IP (inside the netns), not on every local address.
nodePortAddresses: ["primary"]
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# 0 = leave the kernel's conntrack settings alone (they are not per-netns, and not ours to change).
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# The API server's own record of every ResourceSlice (and ResourceClaim) write, for the e2e suite to count.
write_audit_policy() {
  cat >"$STATE/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
    resources:
      - group: resource.k8s.io
        resources: ["resourceslices", "resourceclaims", "resourceclaims/status"]
  - level: None
EOF
}
