"""The upstream resource.k8s.io/v1 validation rules, shared by the slice builder and the embedded API server."""
