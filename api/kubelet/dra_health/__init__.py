"""Generated kubelet gRPC code; see snn_dra.api.kubelet."""
