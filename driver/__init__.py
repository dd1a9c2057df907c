"""Behaviour of snn-dra: backends, device model, slices, kubelet plugin, embedded cluster, CLI."""
