"""Builders for hand-written ResourceSlice / DeviceClass / ResourceClaim JSON used by the allocator tests.

The allocator's input *is* this JSON, so building it by hand is the honest way to pin down one rule at a time.
"""

from __future__ import annotations

from typing import Any

DRIVER = "snn.dra.dev"
NODE = "node-a"


def attrs(**values: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for k, v in values.items():
        if isinstance(v, bool):
            out[k] = {"bool": v}
        elif isinstance(v, int):
            out[k] = {"int": v}
        else:
            out[k] = {"string": v}
    return out


def device(name: str, type_: str = "chip", chip: int = 0, **extra: Any) -> dict[str, Any]:
    dev: dict[str, Any] = {"name": name, "attributes": attrs(type=type_, chipID=chip)}
    dev.update(extra)
    return dev


def rslice(
    name: str,
    devices: list[dict[str, Any]] | None = None,
    *,
    pool: str = NODE,
    driver: str = DRIVER,
    node: str | None = NODE,
    generation: int = 1,
    count: int = 1,
    counters: list[dict[str, Any]] | None = None,
    all_nodes: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "driver": driver,
        "pool": {"name": pool, "generation": generation, "resourceSliceCount": count},
    }
    if all_nodes:
        spec["allNodes"] = True
    else:
        spec["nodeName"] = node
    if counters is not None:
        spec["sharedCounters"] = counters
    else:
        spec["devices"] = devices or []
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": name}, "spec": spec}


def dclass(name: str, *exprs: str, config: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selectors": [{"cel": {"expression": e}} for e in exprs]}
    if config:
        spec["config"] = config
    return {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": name}, "spec": spec}


TYPE_IS = 'device.attributes["snn.dra.dev"].type == "{}"'


def standard_classes() -> dict[str, dict[str, Any]]:
    return {
        "snn": dclass("snn", f'device.driver == "{DRIVER}"'),
        "chip": dclass("chip", TYPE_IS.format("chip")),
        "core-group": dclass("core-group", TYPE_IS.format("coreGroup")),
        "router": dclass("router", TYPE_IS.format("spikeRouter")),
    }


def exactly(name: str, cls: str = "snn", *exprs: str, **fields: Any) -> dict[str, Any]:
    ex: dict[str, Any] = {"deviceClassName": cls}
    if exprs:
        ex["selectors"] = [{"cel": {"expression": e}} for e in exprs]
    ex.update(fields)
    return {"name": name, "exactly": ex}


def claim(
    name: str,
    *requests: dict[str, Any],
    namespace: str = "default",
    constraints: list[dict[str, Any]] | None = None,
    config: list[dict[str, Any]] | None = None,
    allocation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    devices: dict[str, Any] = {"requests": list(requests)}
    if constraints:
        devices["constraints"] = constraints
    if config:
        devices["config"] = config
    obj: dict[str, Any] = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "spec": {"devices": devices},
    }
    if allocation is not None:
        obj["status"] = {"allocation": allocation}
    return obj


def held(name: str, *devices: str, pool: str = NODE, admin: bool = False, **per_result: Any) -> dict[str, Any]:
    """A claim that already holds ``devices`` (as if allocated earlier)."""
    results = []
    for d in devices:
        res: dict[str, Any] = {"request": "r", "driver": DRIVER, "pool": pool, "device": d}
        if admin:
            res["adminAccess"] = True
        res.update(per_result)
        results.append(res)
    return claim(name, exactly("r"), allocation={"devices": {"results": results}})


def picked(allocation: dict[str, Any]) -> list[str]:
    return [r["device"] for r in allocation["devices"]["results"]]
