"""Shared pieces for the config/CDI/checkpoint/prepare tests: a small inventory, claim JSON, a fake claim source,
and the upstream CDI schema validator (vendored in tests/data/cdi, see SOURCE.md there)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from snn_dra.api.attributes import Family
from snn_dra.api.nodeconfig import PublishConfig
from snn_dra.driver.backends.base import Access, Board, Chip, Core, DeviceNode, EventQueue, Inventory, Router
from snn_dra.driver.claims import ClaimNotFoundError, ClaimRef
from snn_dra.driver.model import DeviceModel, build_model
from snn_dra.driver.prepare import FaultHook, Preparer

DRIVER = "snn.dra.dev"
NODE = "node-a"
SCHEMA_DIR = Path(__file__).resolve().parent / "data" / "cdi"


def _chip(index: int, family: Family, *, akida: bool) -> Chip:
    cores = tuple(Core(k, k % 4, k // 4, 1000, 1024, 10) for k in range(8))
    if akida:
        access = Access(
            device_nodes=(
                DeviceNode(path=f"/dev/akida{index}", host_path=f"/dev/akida{index}", major=240, minor=index),
            )
        )
    else:
        access = Access(endpoints=("10.0.0.5:7000",), env=(("LOIHI_CHIP_ADDR", f"{index},0,0"),))
    return Chip(
        index=index,
        id=f"n1-c{index}",
        serial=f"S{index}",
        family=family,
        model="akd1000" if akida else "oheo-gulch",
        board_id="b0",
        system_id="sys0",
        mesh=(index, 0, 0),
        core_mesh=(4, 2),
        nominal_cores=8,
        cores=cores,
        natural_group=(2, 2),
        router=Router(100, 4, 2),
        event_queues=(EventQueue(0, 64, 5),),
        hops_to_host=0,
        firmware_version="1.0.0",
        access=access,
    )


def make_model() -> DeviceModel:
    """Chip n1-c0 (Ethernet, Loihi-like, env + endpoints) and n1-c1 (Akida-like, /dev/akida1)."""
    inv = Inventory(
        NODE,
        "sys0",
        (
            Board(
                "b0", "mixed", Family.LOIHI2, (_chip(0, Family.LOIHI2, akida=False), _chip(1, Family.AKIDA, akida=True))
            ),
        ),
    )
    return build_model(inv, PublishConfig())


def new_uid() -> str:
    return str(uuid.uuid4())


def result(
    device: str, request: str = "req", *, pool: str = NODE, driver: str = DRIVER, **extra: Any
) -> dict[str, Any]:
    return {"request": request, "driver": driver, "pool": pool, "device": device, **extra}


def opaque(
    params: Any, *, source: str = "FromClaim", requests: list[str] | None = None, driver: str = DRIVER
) -> dict[str, Any]:
    cfg: dict[str, Any] = {"source": source, "opaque": {"driver": driver, "parameters": params}}
    if requests is not None:
        cfg["requests"] = requests
    return cfg


def snn(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "snn.dra.dev/v1alpha1", "kind": "SNNConfig", **fields}


def claim(
    name: str = "c1",
    *,
    namespace: str = "default",
    uid: str | None = None,
    results: list[dict[str, Any]] | None = None,
    config: list[dict[str, Any]] | None = None,
    allocated: bool = True,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or new_uid()},
        "spec": {"devices": {"requests": [{"name": "req", "exactly": {"deviceClassName": "snn"}}]}},
        "status": {},
    }
    if allocated:
        obj["status"]["allocation"] = {"devices": {"results": results or [], "config": config or []}}
    return obj


def ref(obj: Mapping[str, Any]) -> ClaimRef:
    meta = obj["metadata"]
    return ClaimRef(meta["namespace"], meta["name"], meta["uid"])


class FakeClaimSource:
    """Claims by (namespace, name); counts reads so tests can prove unprepare reads nothing."""

    def __init__(self, *claims: Mapping[str, Any]) -> None:
        self.claims: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.reads = 0
        for c in claims:
            self.add(c)

    def add(self, obj: Mapping[str, Any]) -> None:
        self.claims[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def get(self, namespace: str, name: str) -> Mapping[str, Any]:
        self.reads += 1
        try:
            return self.claims[(namespace, name)]
        except KeyError:
            raise ClaimNotFoundError(f"resourceclaim {namespace}/{name}: not found in the API server") from None


def make_preparer(
    tmp: Path,
    source: Any,
    *,
    hook: FaultHook | None = None,
    model: DeviceModel | None = None,
    alarm: Callable[[str], None] | None = None,
) -> Preparer:
    boot = tmp / "boot_id"
    if not boot.exists():
        tmp.mkdir(parents=True, exist_ok=True)
        boot.write_text("boot-1\n")
    m = model or make_model()
    return Preparer(
        driver_name=DRIVER,
        node_name=NODE,
        devices=m.by_name,
        cdi_dir=tmp / "cdi",
        state_dir=tmp / "state",
        claims=source,
        fault_hook=hook,
        boot_id_path=boot,
        on_alarm=alarm,
    )


def cdi_validator() -> Draft7Validator:
    def load(name: str) -> Resource[Any]:
        return Resource.from_contents(json.loads((SCHEMA_DIR / name).read_text()), default_specification=DRAFT7)

    registry: Registry[Any] = Registry().with_resources(
        [("file:///cdi/schema.json", load("schema.json")), ("file:///cdi/defs.json", load("defs.json"))]
    )
    return Draft7Validator({"$ref": "file:///cdi/schema.json"}, registry=registry)


_VALIDATOR = cdi_validator()


def assert_specs_valid(cdi_dir: Path) -> list[dict[str, Any]]:
    """Every spec in the dir is schema-valid, 0644, and uses the lowest cdiVersion; returns them."""
    from snn_dra.api.cdi import CdiSpec
    from snn_dra.driver.cdi import minimum_version

    specs = []
    for path in sorted(cdi_dir.glob("*")):
        assert path.suffix == ".json", f"stray file in CDI dir: {path.name}"
        assert path.stat().st_mode & 0o777 == 0o644
        data = json.loads(path.read_text())
        errors = [e.message for e in _VALIDATOR.iter_errors(data)]
        assert not errors, (path.name, errors)
        assert data["cdiVersion"] == minimum_version(CdiSpec.model_validate(data))
        specs.append(data)
    return specs


def env_of(spec: Mapping[str, Any], device_suffix: str) -> dict[str, str]:
    for d in spec["devices"]:
        if d["name"].endswith(device_suffix):
            return dict(e.split("=", 1) for e in d["containerEdits"].get("env", []))
    raise AssertionError(f"no device ending in {device_suffix}")
