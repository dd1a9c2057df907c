"""Kubelet gRPC contracts (plugin registration, DRA node service, DRA health) and their generated Python code.

One folder per proto package and version. Regenerate with ``hack/gen-protos.sh``; never edit the ``*_pb2*`` files.
"""
