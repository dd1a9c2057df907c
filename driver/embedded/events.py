"""Events the embedded cluster's controllers record about objects, shaped like client-go's event recorder writes.

A loop that has to skip an object (malformed, or refused by a write) says so where an operator looks first,
``kubectl get events``, instead of only in a log nobody reads. Recording never raises: an Event that cannot be
written is logged, so a broken object can never stop the loop that reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from snn_dra.driver.embedded.resources import RESOURCES
from snn_dra.driver.embedded.store import Store

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 1024
"""The event message length client-go's recorder keeps."""


def involved_object(resource: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The ``involvedObject`` reference of ``obj``; tolerant of any shape (the object may be the broken one)."""
    info = RESOURCES.get(resource)
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    ref: dict[str, Any] = {"kind": info.kind if info else resource,
                           "apiVersion": info.api_version if info else "v1"}
    for key in ("name", "namespace", "uid", "resourceVersion"):
        value = meta.get(key)
        if isinstance(value, str) and value:
            ref[key] = value
    if info is not None and not info.namespaced:
        ref.pop("namespace", None)
    return ref


def record_event(store: Store, resource: str, obj: Mapping[str, Any], *, type_: str, reason: str, message: str,
                 component: str, host: str = "") -> dict[str, Any] | None:
    """Create a core/v1 Event about ``obj`` (in its namespace, ``default`` for cluster-scoped objects)."""
    if "events" not in store.served:
        return None
    ref = involved_object(resource, obj)
    namespace = ref.get("namespace") or "default"
    name = str(ref.get("name") or "object").replace("/", "-").replace("%", "-")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    source: dict[str, Any] = {"component": component}
    if host:
        source["host"] = host
    event: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{name[:200]}.", "namespace": namespace},
        "involvedObject": {**ref, "namespace": namespace} if ref.get("namespace") else ref,
        "type": type_,
        "reason": reason,
        "message": message[:MESSAGE_LIMIT],
        "source": source,
        "reportingComponent": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    if host:
        event["reportingInstance"] = host
    try:
        return store.create("events", event)
    except Exception as exc:  # reporting must never break the reporting loop
        log.warning("cannot record %s event about %s %s: %s", reason, ref.get("kind"), name, exc)
        return None
