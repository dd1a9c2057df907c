"""Split SNN models: describe, plan into stages, place on devices with few router hops, and train split.

``loading`` reads the model file, ``planner`` cuts layers into stages that fit the family's devices,
``cost`` is the one place the hop-weighted traffic is defined, ``inventory`` reads what is free in a
live cluster, ``placement`` searches a low-traffic placement, ``manifests`` renders the claims and pods,
``learning`` is the split-learning workload (client and server over TCP) on the numpy SNN of ``snn``,
framed by ``wire``.
"""
