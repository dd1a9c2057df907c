"""Warning Events on this node's Node object, for conditions an operator must see without reading plugin logs.

``kubectl describe node`` and ``kubectl get events`` are where an operator looks first; a damaged prepare
state (see ``prepare.py``) is reported there as well as in the log and a metric. The shape is the one
client-go's event recorder writes for a node (core/v1 Event in namespace ``default``, ``involvedObject`` the
Node). Posting never raises and runs off the caller's thread: a failed report is logged, and it must never
hold the serialization lock or fail a Prepare.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any, Final

from kubernetes import client

from snn_dra.driver.kubejson import KubeJSON

log = logging.getLogger(__name__)

COMPONENT: Final = "snn-dra-kubelet-plugin"
MESSAGE_LIMIT: Final = 1024
"""The message length client-go's recorder keeps."""


def node_event(node_name: str, *, reason: str, message: str, type_: str = "Warning") -> dict[str, Any]:
    """The core/v1 Event object about a Node."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{node_name[:200]}.", "namespace": "default"},
        "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        "type": type_,
        "reason": reason,
        "message": message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 3] + "...",
        "source": {"component": COMPONENT, "host": node_name},
        "reportingComponent": COMPONENT,
        "reportingInstance": node_name,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def post_node_event(
    api_client: client.ApiClient, node_name: str, *, reason: str, message: str
) -> dict[str, Any] | None:
    """Create the Event; returns it as stored, or None (logged) when the API server refused or was unreachable."""
    try:
        return KubeJSON(api_client).create(
            "/api/v1/namespaces/default/events", node_event(node_name, reason=reason, message=message)
        )
    except Exception as exc:  # reporting must never fail the caller
        log.warning("cannot record %s event on node %s: %s", reason, node_name, exc)
        return None


def post_node_event_async(
    api_client: client.ApiClient, node_name: str, *, reason: str, message: str
) -> threading.Thread:
    """:func:`post_node_event` in a daemon thread (callers may hold the serialization lock)."""
    thread = threading.Thread(
        target=post_node_event,
        args=(api_client, node_name),
        kwargs={"reason": reason, "message": message},
        name="node-event",
        daemon=True,
    )
    thread.start()
    return thread
