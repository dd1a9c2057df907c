"""Render a plan (and optionally a placement to pin) as ready-to-apply Kubernetes objects.

Per group: one ResourceClaimTemplate with one request per stage, and one Pod wired to those requests
(a container per stage; for the split-learning workload one learner container per side, plus a Service
in front of the server). Stages of one claim are kept close by ``firstAvailable`` subrequests from tight
to loose (``planner.Level``) and ``matchAttribute`` constraints over them; a stage of several core
groups also keeps its own devices on one chip. With a placement, each stage's first subrequest is
``pinned``: CEL selectors that name its chosen devices by ``chipID`` and core origin (CEL sees no device
names). If those devices are taken before the scheduler gets there, the stage falls back to ``near`` (any
fitting device on the chips the placement chose for the group), then to the plan's levels, so a stale pin
costs some locality, never the allocation. Pinned and near subrequests join the constraints of the
tightest level the placement satisfies, so a stage that falls back stays with the stages that did not.

Every selector names the device type before reading a capacity, so it is never evaluated against a
device that lacks the key (a CEL runtime error aborts scheduling).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from snn_dra.api.attributes import CONFIG_API_VERSION, DRIVER_NAME
from snn_dra.api.split import Workload
from snn_dra.driver.split.inventory import LiveDevice
from snn_dra.driver.split.placement import GroupPlacement, Placement
from snn_dra.driver.split.planner import LEVEL_ATTRIBUTES, Level, Plan, Stage, StageGroup
from snn_dra.driver.topology import chip_region

PINNED: Final = "pinned"
NEAR: Final = "near"
"""Fallback right after the pin: any fitting device on the chips the placement chose for the group."""
DEFAULT_IMAGE: Final = "busybox:1.36"
LEARNER_IMAGE: Final = "ghcr.io/snn-dra/snn-dra:dev"
"""The driver image carries ``snn-dra split learn`` (and numpy)."""
LEARN_PORT: Final = 7070
PART_OF: Final = "snn-dra-split"
_A: Final = f'device.attributes["{DRIVER_NAME}"]'
_C: Final = f'device.capacity["{DRIVER_NAME}"]'


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stage_selector(plan: Plan, stage: Stage) -> str:
    need = stage.per_device
    parts = [f"{_A}.type == {_q(str(stage.unit.type))}", f"{_A}.family == {_q(str(plan.chip.family))}"]
    if plan.model.spec.chip_model is not None:
        parts.append(f"{_A}.model == {_q(plan.model.spec.chip_model)}")
    parts += [
        f'{_C}.cores.compareTo(quantity("{need.cores}")) >= 0',
        f'{_C}.neurons.compareTo(quantity("{need.neurons}")) >= 0',
        f'{_C}.synapseMemory.compareTo(quantity("{need.synapse_memory}")) >= 0',
    ]
    return " && ".join(parts)


def pin_selector(devices: Sequence[LiveDevice]) -> str:
    """Exactly these devices: type, chip and core origin identify a partition in the whole cluster."""
    by_chip: dict[str, list[LiveDevice]] = {}
    for d in devices:
        by_chip.setdefault(d.site.chip, []).append(d)
    alternatives = []
    for chip, members in by_chip.items():
        spots = " || ".join(f"({_A}.coreX == {d.site.origin[0]} && {_A}.coreY == {d.site.origin[1]})" for d in members)
        alternatives.append(f"({_A}.chipID == {_q(chip)} && ({spots}))")
    return f"{_A}.type == {_q(devices[0].site.type)} && ({' || '.join(alternatives)})"


def pinned_level(stages: Sequence[Sequence[LiveDevice]]) -> Level:
    """The tightest locality level a placement satisfies (which constraints its pins may join)."""
    sites = [d.site for devs in stages for d in devs]
    if len({s.chip for s in sites}) == 1:
        return Level.CHIP
    if len({s.board for s in sites}) == 1:
        return Level.REGION if len({chip_region(s.mesh) for s in sites}) == 1 else Level.BOARD
    return Level.NODE


def _sub(name: str, plan: Plan, stage: Stage, extra: str | None = None) -> dict[str, Any]:
    selectors: list[dict[str, Any]] = [{"cel": {"expression": stage_selector(plan, stage)}}]
    if extra:
        selectors.append({"cel": {"expression": extra}})
    return {"name": name, "deviceClassName": stage.unit.device_class, "selectors": selectors, "count": stage.count}


def claim_spec(plan: Plan, group: StageGroup, pins: GroupPlacement | None = None) -> dict[str, Any]:
    levels = group.levels or ((Level.NODE,) if pins is not None else ())
    requests: list[dict[str, Any]] = []
    for i, stage in enumerate(group.stages):
        subs = [_sub(str(level), plan, stage) for level in levels]
        if pins is not None:
            chips = sorted({d.site.chip for devs in pins.stages for d in devs})
            near = f"{_A}.chipID in [{', '.join(_q(c) for c in chips)}]"
            subs[:0] = [_sub(PINNED, plan, stage, pin_selector(pins.stages[i])), _sub(NEAR, plan, stage, near)]
        if subs:
            requests.append({"name": stage.name, "firstAvailable": subs})
        else:
            exactly = _sub("", plan, stage)
            del exactly["name"]
            requests.append({"name": stage.name, "exactly": exactly})
    constraints = []
    pin_keys = LEVEL_ATTRIBUTES[pinned_level(pins.stages)] if pins is not None else ()
    for attribute in ("chipID", "chipRegion", "boardID"):
        refs = [f"{s.name}/{lvl}" for s in group.stages for lvl in levels if attribute in LEVEL_ATTRIBUTES[lvl]]
        if attribute in pin_keys:
            refs = [f"{s.name}/{sub}" for s in group.stages for sub in (PINNED, NEAR)] + refs
        if len({r.split("/")[0] for r in refs}) >= 2:
            constraints.append({"requests": refs, "matchAttribute": f"{DRIVER_NAME}/{attribute}"})
    for stage in group.stages:
        if stage.count > 1 and stage.unit.type != "chip":
            constraints.append({"requests": [stage.name], "matchAttribute": f"{DRIVER_NAME}/chipID"})
    config = [
        {
            "requests": [stage.name],
            "opaque": {
                "driver": DRIVER_NAME,
                "parameters": {
                    "apiVersion": CONFIG_API_VERSION,
                    "kind": "SNNConfig",
                    "splitStage": {"index": stage.index, "name": stage.name},
                },
            },
        }
        for stage in group.stages
    ]
    devices: dict[str, Any] = {"requests": requests}
    if constraints:
        devices["constraints"] = constraints
    devices["config"] = config
    return {"devices": devices}


def _labels(plan: Plan, group: StageGroup) -> dict[str, str]:
    return {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/name": group.name,
        "snn.dra.dev/split-model": plan.model.metadata.name,
    }


def _server_address(plan: Plan) -> str:
    server = plan.groups[1].name
    return f"{server}.{plan.model.metadata.namespace}.svc:{LEARN_PORT}"


def _containers(plan: Plan, group: StageGroup, image: str | None) -> list[dict[str, Any]]:
    if plan.model.spec.workload == Workload.SPLIT_LEARNING:
        role = "client" if group is plan.groups[0] else "server"
        args = ["split", "learn", "--role", role]
        if role == "server":
            args += ["--listen", f"0.0.0.0:{LEARN_PORT}"]
        else:
            args += ["--server", _server_address(plan)]
        container: dict[str, Any] = {
            "name": role,
            "image": image or LEARNER_IMAGE,
            "imagePullPolicy": "IfNotPresent",
            "command": ["snn-dra"],
            "args": args,
            "resources": {"claims": [{"name": "stages", "request": s.name} for s in group.stages]},
        }
        if role == "server":
            container["ports"] = [{"containerPort": LEARN_PORT, "name": "split"}]
        return [container]
    return [
        {
            "name": stage.name,
            "image": image or DEFAULT_IMAGE,
            "imagePullPolicy": "IfNotPresent",
            "command": [
                "sh",
                "-c",
                f"echo 'stage {stage.index} ({', '.join(stage.layers)}):'; env | grep '^SNN_DRA_' | sort; sleep 3600",
            ],
            "resources": {"claims": [{"name": "stages", "request": stage.name}]},
        }
        for stage in group.stages
    ]


def render(plan: Plan, placement: Placement | None = None, image: str | None = None) -> list[dict[str, Any]]:
    """Every object to apply, in apply order (templates before the pods that use them)."""
    ns = plan.model.metadata.namespace
    docs: list[dict[str, Any]] = []
    pods: list[dict[str, Any]] = []
    pins = {g.group.name: g for g in placement.groups} if placement is not None else {}
    learning = plan.model.spec.workload == Workload.SPLIT_LEARNING
    for group in plan.groups:
        labels = _labels(plan, group)
        docs.append(
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceClaimTemplate",
                "metadata": {"name": group.name, "namespace": ns, "labels": labels},
                "spec": {"metadata": {"labels": labels}, "spec": claim_spec(plan, group, pins.get(group.name))},
            }
        )
        pod_spec: dict[str, Any] = {
            "resourceClaims": [{"name": "stages", "resourceClaimTemplateName": group.name}],
            "containers": _containers(plan, group, image),
            "terminationGracePeriodSeconds": 1,
        }
        if learning:
            pod_spec["restartPolicy"] = "Never"
        pods.append(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": group.name, "namespace": ns, "labels": labels},
             "spec": pod_spec}
        )  # fmt: skip
    if learning:
        server = plan.groups[1]
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": server.name, "namespace": ns, "labels": _labels(plan, server)},
                "spec": {
                    "selector": {"app.kubernetes.io/name": server.name},
                    "ports": [{"name": "split", "port": LEARN_PORT, "targetPort": LEARN_PORT}],
                },
            }
        )
    return docs + pods
