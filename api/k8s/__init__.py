"""Kubernetes API types (k8s.io/api, k8s.io/apimachinery) as protobuf messages: the wire format of the
``application/vnd.kubernetes.protobuf`` bodies that client-go's typed clients send and ask for.

``proto/`` holds the upstream generated.proto files unmodified (Apache-2.0, version in ``proto/VERSION``); the
``generated_pb2.py`` modules are compiled from them. Regenerate with ``hack/gen-k8s-protos.sh``; never edit them.
"""
