"""The ResourceSlice controller: keeps the API server's slices of one node pool equal to the desired set.

It follows the semantics of the upstream Go controller (``resourceslice`` package, 1.36+) so that
consumers and operators see the same behaviour as with any Go driver:

* slices are created with ``generateName = <hex index>-<driver>-<node>-`` and matched back to the
  desired slices by that index prefix alone (the server truncates long generateNames; a prefix of the
  wrong width or one that does not parse makes a slice obsolete);
* only slices of the highest ``pool.generation`` count; older ones are obsolete;
* the generation stays when nothing is added and at most one slice changes, otherwise it goes up by
  one and every slice gets the new ``pool`` block, so an allocator never mixes two generations;
* obsolete slices are deleted first (with uid + resourceVersion preconditions), then changed slices
  are updated in full, then missing ones are created;
* a field the API server did not store (feature gate off) is reported once as dropped, and the stored
  object is taken as the desired state so the controller does not loop forever;
* stored and desired slices are compared by meaning (:func:`comparable_spec`): quantities by value, empty
  optional fields and server-stamped taint times ignored, since the server rewrites all of those.

Each pass reads raw JSON (``_preload_content=False``): the client's model classes would cost more
than the pass itself and could hide a dropped field.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from snn_dra.driver.kubejson import KubeJSON, resource_path
from snn_dra.driver.quantity import server_value
from snn_dra.driver.quantity_paths import RESOURCESLICE_SPEC_PATHS, map_quantities
from snn_dra.driver.slices import generate_name, slice_prefix_width

log = logging.getLogger(__name__)

_SLICES = resource_path("resource.k8s.io", "v1", "resourceslices")

DEFAULT_SYNC_DELAY_S = 30.0
"""Re-sync period after any event, as the Go controller's DefaultSyncDelay."""

_GATE_FIELDS: dict[str, tuple[str, ...]] = {
    "DRAPartitionableDevices": ("sharedCounters", "consumesCounters", "perDeviceNodeSelection"),
    "DRAConsumableCapacity": ("allowMultipleAllocations", "requestPolicy"),
    "DRADeviceTaints": ("taints",),
    "DRADeviceBindingConditions": ("bindsToNode", "bindingConditions", "bindingFailureConditions"),
}


@dataclass
class PublishResult:
    """What one reconcile pass did; ``dropped_gates`` names gates the API server seems to have off."""

    generation: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    dropped_gates: set[str] = field(default_factory=set)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


def parse_index(name: str, count: int) -> int | None:
    """The desired-slice index a stored slice stands for, or None when its name marks it obsolete.

    Only the hex index prefix counts: the API server cuts ``generateName`` to 58 characters before
    adding its random suffix, so on a long node name the stored name no longer holds the whole
    ``<driver>-<node>-`` part. The list is already filtered by driver and node name, and the caller
    checks ``spec.pool.name``, so the prefix is all that identifies the slice.
    """
    width = slice_prefix_width(count)
    prefix, sep, _ = name.partition("-")
    if not sep or len(prefix) != width or not all(c in "0123456789abcdef" for c in prefix):
        return None
    index = int(prefix, 16)
    return index if index < count else None


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        # 409: someone changed a slice between our list and our write; the next attempt re-lists.
        return exc.status in (409, 429, 500, 502, 503, 504) or exc.status == 0
    return isinstance(exc, (ConnectionError, OSError))


def _drop_empty(node: Any) -> Any:
    """``node`` without null, empty-list and empty-map members: Go's API types omit those when they encode."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            kept = _drop_empty(value)
            if kept is None or (not kept and isinstance(kept, (dict, list))):
                continue
            out[key] = kept
        return out
    if isinstance(node, list):
        return [_drop_empty(item) for item in node]
    return node


def _semantic_quantity(raw: Any) -> Any:
    value = server_value(raw)
    return raw if value is None else value


def comparable_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A slice spec reduced to what the API server keeps, so stored and desired compare by meaning, not spelling.

    The real server rewrites quantities in canonical text ("100000" -> "100k"), omits empty optional lists and
    maps, and stamps taint ``timeAdded`` itself; any of those seen as a change makes the controller rewrite its
    slices forever. Quantities become their exact stored values (so any server spelling matches), empties go,
    taint times go (kept from the stored slice by :func:`_carry_taint_times`), and so does ``pool``, which the
    controller compares on its own.
    """
    out: dict[str, Any] = _drop_empty({k: v for k, v in spec.items() if k != "pool"})  # a fresh copy
    for device in out.get("devices") or []:
        for taint in device.get("taints") or []:
            taint.pop("timeAdded", None)
            if taint.get("value") == "":
                del taint["value"]  # a string the API types omit when empty
    map_quantities(out, RESOURCESLICE_SPEC_PATHS, _semantic_quantity)
    return out


def _taint_key(taint: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return (taint.get("key"), taint.get("value"), taint.get("effect"))


def _carry_taint_times(desired: dict[str, Any], existing: Mapping[str, Any]) -> None:
    """Keep the timeAdded of taints that already existed, so a re-publish does not restart eviction clocks."""
    old_devices = {d.get("name"): d for d in existing.get("devices") or []}
    for device in desired.get("devices") or []:
        old = old_devices.get(device.get("name"))
        if not old:
            continue
        old_times = {_taint_key(t): t.get("timeAdded") for t in old.get("taints") or []}
        for taint in device.get("taints") or []:
            when = old_times.get(_taint_key(taint))
            if when and "timeAdded" not in taint:
                taint["timeAdded"] = when


def spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]
    return spec


def _dropped_gates(sent: Any, stored: Any) -> set[str]:
    """Gates whose fields were sent but not stored (the API server drops fields of disabled gates)."""
    gates: set[str] = set()

    def walk(a: Any, b: Any) -> None:
        if isinstance(a, Mapping):
            if not isinstance(b, Mapping):
                return
            for key, value in a.items():
                if key not in b or b[key] in (None, [], {}):
                    if value in (None, [], {}, False):
                        continue
                    gates.update(g for g, names in _GATE_FIELDS.items() if key in names)
                else:
                    walk(value, b[key])
        elif isinstance(a, list) and isinstance(b, list):
            for x, y in zip(a, b, strict=False):
                walk(x, y)

    walk(sent, stored)
    return gates


class SlicePublisher:
    """Publishes one node-local pool of ResourceSlices and keeps it in sync.

    ``publish()`` runs one reconcile pass and is what tests and one-shot tools call; ``run()`` keeps
    reconciling on every slice event (the kubelet wipes slices when a plugin goes away) and every
    ``sync_delay`` seconds until ``stop()``.
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        driver: str,
        node_name: str,
        node_uid: str | None = None,
        sync_delay: float = DEFAULT_SYNC_DELAY_S,
        on_error: Callable[[Exception], None] | None = None,
        on_published: Callable[[PublishResult], None] | None = None,
    ) -> None:
        self._kube = KubeJSON(api_client)
        self.driver = driver
        self.node_name = node_name
        self._selector = f"spec.driver={driver},spec.nodeName={node_name}"
        self._node_uid = node_uid
        self._sync_delay = sync_delay
        self._on_error = on_error or (lambda exc: log.error("slice publishing failed: %s", exc))
        self._on_published = on_published
        self._desired: list[dict[str, Any]] = []
        self._adopted: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.last_result = PublishResult()
        self.dropped_gates: set[str] = set()

    # --- desired state ---------------------------------------------------------------------------
    def set_desired(self, slices: Sequence[Mapping[str, Any]]) -> None:
        """Replace the desired slices (as built by ``slices.build``) and wake the controller."""
        with self._lock:
            self._desired = [copy.deepcopy(dict(s)) for s in slices]
            self._adopted.clear()
        self._wake.set()

    # --- one pass -----------------------------------------------------------------------------------
    def publish(self, slices: Sequence[Mapping[str, Any]] | None = None) -> PublishResult:
        """Reconcile once; retries transient API errors with backoff."""
        if slices is not None:
            self.set_desired(slices)
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            wait=wait_exponential(multiplier=0.1, max=5),
            stop=stop_after_attempt(6),
            reraise=True,
        )
        result: PublishResult = retrying(self._reconcile)
        self.last_result = result
        self.dropped_gates |= result.dropped_gates
        return result

    def _owner(self) -> dict[str, Any]:
        if self._node_uid is None:
            node = self._kube.get(resource_path("", "v1", "nodes", self.node_name))
            self._node_uid = node["metadata"]["uid"]
        return {"apiVersion": "v1", "kind": "Node", "name": self.node_name, "uid": self._node_uid, "controller": True}

    def _list_existing(self) -> list[dict[str, Any]]:
        listed = self._kube.get(_SLICES, fieldSelector=self._selector)
        items: list[dict[str, Any]] = listed.get("items") or []
        return items

    def _reconcile(self) -> PublishResult:
        with self._lock:
            desired = [copy.deepcopy(s) for s in self._desired]
            adopted = dict(self._adopted)
        result = PublishResult()
        count = len(desired)
        existing = self._list_existing()
        current_gen = max((int(s["spec"]["pool"].get("generation", 0)) for s in existing), default=0)

        matched: dict[int, dict[str, Any]] = {}
        obsolete: list[dict[str, Any]] = []
        for stored in sorted(existing, key=lambda s: str(s["metadata"]["name"])):
            index = parse_index(stored["metadata"]["name"], count)
            pool = stored["spec"]["pool"]
            if (
                index is None
                or index in matched
                or int(pool.get("generation", 0)) < current_gen
                or pool.get("name") != self.node_name
            ):
                obsolete.append(stored)
            else:
                matched[index] = stored

        specs: list[dict[str, Any]] = []
        changed: list[int] = []
        for index, want in enumerate(desired):
            spec = adopted.get(index) or want["spec"]
            prev = matched.get(index)
            if prev is not None:
                _carry_taint_times(spec, prev["spec"])
                if comparable_spec(prev["spec"]) != comparable_spec(spec):
                    changed.append(index)
            specs.append(spec)
        missing = [i for i in range(count) if i not in matched]

        pool_count_changed = any(int(s["spec"]["pool"].get("resourceSliceCount", 0)) != count for s in matched.values())
        generation = current_gen
        if missing or len(changed) > 1 or (obsolete and matched) or pool_count_changed:
            generation = current_gen + 1
        result.generation = generation
        pool_block = {"name": self.node_name, "generation": generation, "resourceSliceCount": count}

        for stored in obsolete:
            meta = stored["metadata"]
            preconditions = {"preconditions": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}}
            try:
                self._kube.delete(f"{_SLICES}/{meta['name']}", preconditions)
                result.deleted.append(meta["name"])
            except ApiException as exc:
                if exc.status not in (404, 409):
                    raise

        owner = self._owner() if missing else None
        for index in sorted(matched):
            stored = matched[index]
            if index not in changed and stored["spec"]["pool"] == pool_block:
                continue
            body: dict[str, Any] = {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceSlice",
                "metadata": stored["metadata"],
                "spec": {**specs[index], "pool": pool_block},
            }
            replaced = self._kube.replace(f"{_SLICES}/{stored['metadata']['name']}", body)
            self._note_stored(index, spec_of(body), replaced["spec"], result)
            result.updated.append(stored["metadata"]["name"])

        for index in missing:
            metadata = dict(desired[index].get("metadata") or {})
            metadata.pop("name", None)
            metadata["generateName"] = generate_name(index, count, self.driver, self.node_name)
            metadata["ownerReferences"] = [owner]
            body = {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceSlice",
                "metadata": metadata,
                "spec": {**specs[index], "pool": pool_block},
            }
            created = self._kube.create(_SLICES, body)
            self._note_stored(index, spec_of(body), created["spec"], result)
            result.created.append(created["metadata"]["name"])
        return result

    def _note_stored(self, index: int, sent: dict[str, Any], stored: dict[str, Any], result: PublishResult) -> None:
        gates = _dropped_gates(sent, stored)
        if not gates:
            return
        result.dropped_gates |= gates
        adopted = {k: v for k, v in stored.items() if k != "pool"}
        with self._lock:
            self._adopted[index] = adopted
        log.warning(
            "the API server dropped fields of ResourceSlice #%d (feature gates probably off: %s); "
            "publishing what it stores instead",
            index,
            ", ".join(sorted(gates)),
        )

    # --- controller loop ------------------------------------------------------------------------
    def run(self) -> None:
        """Reconcile until ``stop()``: after every slice event of this pool and every sync period."""
        watcher_stop = threading.Event()

        def watch_loop() -> None:
            while not self._stop.is_set() and not watcher_stop.is_set():
                try:
                    for event in self._kube.watch(
                        _SLICES, timeout_seconds=max(1, int(self._sync_delay)), fieldSelector=self._selector
                    ):
                        if event.get("type") != "BOOKMARK":
                            self._wake.set()
                        if self._stop.is_set():
                            break
                except Exception as exc:  # a broken watch is re-opened; the error is reported
                    if not self._stop.is_set():
                        self._on_error(exc)
                        self._stop.wait(1.0)

        watcher = threading.Thread(target=watch_loop, name="slice-watch", daemon=True)
        watcher.start()
        try:
            while not self._stop.is_set():
                try:
                    result = self.publish()
                    if self._on_published is not None:
                        self._on_published(result)
                except Exception as exc:  # reported and retried on the next wake-up
                    self._on_error(exc)
                self._wake.wait(self._sync_delay)
                self._wake.clear()
        finally:
            watcher_stop.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
