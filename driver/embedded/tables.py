"""Server-side ``Table`` rendering with the upstream kubectl columns (resource-api.md §7)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

Obj = Mapping[str, Any]

_NAME_COL = {"name": "Name", "type": "string", "format": "name", "priority": 0,
             "description": "Name must be unique within a namespace."}
_AGE_COL = {"name": "Age", "type": "string", "format": "", "priority": 0,
            "description": "CreationTimestamp is a timestamp representing the server time when this object was "
                           "created."}


def _col(name: str, description: str, priority: int = 0, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": "", "priority": priority, "description": description}


def human_duration(seconds: float) -> str:
    """Like kubectl's ``HumanDuration``: 5s, 3m20s, 5h, 3d, 2y."""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 730:
        return f"{d}d"
    return f"{d // 365}y"


def since(ts: Any) -> str:
    """Age of an RFC 3339 timestamp (seconds or micro-seconds precision)."""
    if not isinstance(ts, str) or not ts:
        return "<unknown>"
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return human_duration((datetime.now(UTC) - when).total_seconds())


def age(obj: Obj) -> str:
    return since((obj.get("metadata") or {}).get("creationTimestamp"))


def _event_row(obj: Obj) -> list[Any]:
    inv = obj.get("involvedObject") or {}
    last = obj.get("lastTimestamp") or obj.get("eventTime") or (obj.get("metadata") or {}).get("creationTimestamp")
    source = obj.get("source") or {}
    src = ", ".join(x for x in (source.get("component"), source.get("host")) if x) or \
        str(obj.get("reportingComponent") or "")
    return [since(last), obj.get("type", ""), obj.get("reason", ""),
            f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}", inv.get("fieldPath", ""), src,
            obj.get("message", ""), since(obj.get("firstTimestamp") or last), obj.get("count") or 1, _name(obj)]


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def claim_state(obj: Obj) -> str:
    status = obj.get("status") or {}
    states = []
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        states.append("deleted")
    if status.get("allocation"):
        states.append("allocated")
        if status.get("reservedFor"):
            states.append("reserved")
    elif not states:
        states.append("pending")
    return ",".join(states)


def _pod_row(obj: Obj) -> list[Any]:
    status = obj.get("status") or {}
    containers = _spec(obj).get("containers") or []
    cstatus = status.get("containerStatuses") or []
    ready = sum(1 for c in cstatus if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in cstatus)
    phase = status.get("reason") or status.get("phase") or "Unknown"
    for c in cstatus:
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            phase = waiting["reason"]
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        phase = "Terminating"
    gates = _spec(obj).get("readinessGates") or []
    return [_name(obj), f"{ready}/{len(containers)}", phase, restarts, age(obj), status.get("podIP") or "<none>",
            _spec(obj).get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>",
            f"{len(gates)}" if gates else "<none>"]


def _node_row(obj: Obj) -> list[Any]:
    status = obj.get("status") or {}
    ready = "Unknown"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            ready = "Ready" if cond.get("status") == "True" else "NotReady"
    states = [ready]
    if _spec(obj).get("unschedulable"):
        states.append("SchedulingDisabled")
    labels = (obj.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k)
    version = (status.get("nodeInfo") or {}).get("kubeletVersion") or ""
    return [_name(obj), ",".join(states), ",".join(roles) or "<none>", age(obj), version]


_Columns = list[dict[str, Any]]
_Row = Callable[[Obj], list[Any]]

_TABLES: dict[str, tuple[_Columns, _Row]] = {
    "resourceslices": (
        [_NAME_COL, _col("Node", "The node which provides the devices."),
         _col("Driver", "The name of the driver which publishes the slice."),
         _col("Pool", "The pool the slice belongs to."), _AGE_COL],
        lambda o: [_name(o), _spec(o).get("nodeName") or "<none>", _spec(o).get("driver", ""),
                   (_spec(o).get("pool") or {}).get("name", ""), age(o)]),
    "resourceclaims": (
        [_NAME_COL, _col("State", "A summary of the current state (allocated, pending, reserved, etc.)."),
         _AGE_COL],
        lambda o: [_name(o), claim_state(o), age(o)]),
    "pods": (
        [_NAME_COL, _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
         _col("Status", "The aggregate status of the containers in this pod."),
         _col("Restarts", "The number of times the containers in this pod have been restarted.", type_="integer"),
         _AGE_COL, _col("IP", "IP address allocated to the pod.", 1),
         _col("Node", "Name of the Node this pod is scheduled to.", 1),
         _col("Nominated Node", "Name of the node where the pod may be scheduled.", 1),
         _col("Readiness Gates", "Pod readiness gates.", 1)],
        _pod_row),
    "nodes": (
        [_NAME_COL, _col("Status", "The status of the node"), _col("Roles", "The roles of the node"), _AGE_COL,
         _col("Version", "Kubelet Version reported by the node.")],
        _node_row),
    "namespaces": (
        [_NAME_COL, _col("Status", "The status of the namespace"), _AGE_COL],
        lambda o: [_name(o), (o.get("status") or {}).get("phase", ""), age(o)]),
}
_TABLES["events"] = (
    [_col("Last Seen", "Time since the event was last seen."), _col("Type", "Event type (Normal, Warning)."),
     _col("Reason", "Why the event was reported."), _col("Object", "The object the event is about."),
     _col("Subobject", "The part of the object concerned.", 1), _col("Source", "Who reported it.", 1),
     _col("Message", "What happened."), _col("First Seen", "Time since the event was first seen.", 1),
     _col("Count", "How often it happened.", 1, "integer"), {**_NAME_COL, "priority": 1}],
    _event_row)
_DEFAULT: tuple[_Columns, _Row] = ([_NAME_COL, _AGE_COL], lambda o: [_name(o), age(o)])


def _partial(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": dict(meta) if isinstance(meta, Mapping) else {}}


def table(resource: str, objs: Sequence[Obj], resource_version: str, include_object: str = "Metadata",
          with_columns: bool = True) -> dict[str, Any]:
    columns, row = _TABLES.get(resource, _DEFAULT)
    rows = []
    for o in objs:
        try:
            cells = row(o)
        except Exception:  # a malformed stored object still gets a row, so listing never fails because of it
            cells = [_name(o) if isinstance(o.get("metadata"), Mapping) else "<unknown>"]
            cells += ["<unknown>"] * (len(columns) - 1)
        r: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            r["object"] = dict(o)
        elif include_object != "None":
            r["object"] = _partial(o)
        rows.append(r)
    out: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                           "metadata": {"resourceVersion": resource_version}, "rows": rows}
    out["columnDefinitions"] = columns if with_columns else []
    return out
