"""The embedded cluster: an HTTPS API server with upstream semantics, plus (elsewhere) allocator, scheduler, kubelet."""
