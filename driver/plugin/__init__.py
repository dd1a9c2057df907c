"""The kubelet plugin process: sockets, registration, the DRA node service, health streams and serialization.

It talks to the kubelet exactly as the Go ``k8s.io/dynamic-resource-allocation/kubeletplugin`` package does
(see docs/kubelet-grpc.md), so a real kubelet and the embedded kubelet emulation see the same behaviour.
"""
