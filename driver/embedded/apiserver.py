"""The embedded Kubernetes API server: HTTPS on loopback, bearer-token auth, REST + watch over one ``Store``.

kubectl 1.32 and the official ``kubernetes`` client talk to it through an ordinary kubeconfig. Only what a DRA
driver and its tests use is served (namespaces, nodes, pods, events, and resource.k8s.io/v1), but with the real
semantics: Status errors, optimistic concurrency, every patch type, watch with bookmarks and 410 Expired,
watch-list (``listoptions``), paged lists from consistent snapshots (``paging``), server-side Table output and the
OpenAPI documents kubectl asks for. Strategic merge patches are JSON merge patches with merge-by-key for the usual
core lists; server-side apply records managedFields, merges by the schemas' list types and answers 409 on
conflicts between managers (``managedfields``).

Everything a request costs beyond reading its bytes (decoding, validation with CEL, the store, encoding the answer)
runs in a small thread pool, never on the event loop, so one large or slow request cannot hold up the others;
bodies are bounded as upstream bounds them (``bodies``), and plain HTTP on the TLS port gets upstream's 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import json
import logging
import secrets
import shutil
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from snn_dra.driver.embedded import bodies, discovery, listoptions, memory, openapi, patches, protobuf, tables
from snn_dra.driver.embedded.errors import (
    ApiError,
    BadRequest,
    InternalError,
    Invalid,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    RequestEntityTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from snn_dra.driver.embedded.kubeconfig import write_kubeconfig
from snn_dra.driver.embedded.resources import RESOURCES, ResourceInfo
from snn_dra.driver.embedded.selectors import parse_field_selector, parse_label_selector
from snn_dra.driver.embedded.store import Obj, Store
from snn_dra.driver.embedded.tls import generate_serving_cert
from snn_dra.driver.embedded.tlsport import TlsOnlyListener
from snn_dra.driver.validation.errors import CauseType, FieldError

log = logging.getLogger(__name__)

_UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
_DEFAULT_WATCH_TIMEOUT = 1800.0
NAMESPACE_CONTROLLER_DELAY = 1.0
"""Seconds until the content of a deleted namespace is deleted (a namespace controller's usual reaction time)."""
REQUEST_WORKERS = 4
"""Threads that decode, validate, store and encode; requests beyond that queue (the event loop stays free)."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")


def _status(err: ApiError) -> web.Response:
    return _json(err.status(), err.code)


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return any("as=Table" in part and "g=meta.k8s.io" in part and "v=v1" in part.replace("v=v1beta1", "")
               for part in accept.split(","))


_STREAMING_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "proxy"})


def _no_streaming(sub: str, namespace: str, name: str) -> str:
    """Why ``kubectl logs/exec/attach/port-forward`` cannot work here, and what to use instead."""
    what = {"log": "logs", "exec": "exec", "attach": "attach", "portforward": "port-forward",
            "proxy": "proxy"}[sub]
    return (f"pods/{sub} of {namespace}/{name}: kubectl {what} cannot work on the embedded cluster: its kubelet "
            "emulation prepares the pod's DRA claims and reports it Running, but starts no containers, so there "
            "are no processes to read logs from, exec into or forward ports to. Check what the pod received "
            "with `kubectl get pod -o yaml` and `snn-dra status`; run real workloads on a real cluster "
            "(hack/local-cluster.sh starts one).")


def _field_manager(request: web.Request) -> str:
    """Who writes: the ``fieldManager`` parameter, else the product of the User-Agent (as upstream names them)."""
    given = request.query.get("fieldManager")
    if given:
        return given
    return request.headers.get("User-Agent", "").split("/", 1)[0][:128] or "unknown"


def _warning_header(text: str) -> str:
    """An RFC 7234 warning (code 299) in header-safe text: the message may quote a client's field names."""
    safe = "".join(c if 32 <= ord(c) < 127 else f"\\u{ord(c):04x}" for c in text)
    return '299 - "' + safe.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ApiServerApp:
    """The aiohttp application around a ``Store``; independent of how it is hosted."""

    def __init__(self, store: Store, token: str, bookmark_interval: float = 1.0, address: str = "127.0.0.1") -> None:
        self.store = store
        self.token = token
        self.bookmark_interval = bookmark_interval
        self.address = address
        self._watches: set[asyncio.Task[Any]] = set()
        self._pool = ThreadPoolExecutor(max_workers=REQUEST_WORKERS, thread_name_prefix="apiserver-request")
        self._heap_dirty = False
        self.app = web.Application(middlewares=[self._protobuf_answers, self._middleware],
                                   client_max_size=bodies.MAX_REQUEST_BODY_BYTES)
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)

    def close(self) -> None:
        """Stop the worker threads (queued requests are dropped; call after the server stopped accepting)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _offload(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))

    async def cancel_watches(self) -> None:
        tasks = list(self._watches)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t

    @web.middleware
    async def _protobuf_answers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """client-go's typed clients accept protobuf first: objects, lists and Status errors answer in it."""
        resp = await handler(request)
        if isinstance(resp, web.Response) and protobuf.wants_protobuf(request.headers.get("Accept", "")):
            return await self._offload(protobuf.reencode, resp)  # type: ignore[no-any-return]
        return resp

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in _UNAUTHENTICATED_PATHS:
            auth = request.headers.get("Authorization", "")
            given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            if not given or not secrets.compare_digest(given.encode(), self.token.encode()):
                return _status(Unauthorized("Unauthorized"))
        try:
            return await handler(request)
        except ApiError as e:
            return _status(e)
        except web.HTTPRequestEntityTooLarge:
            return _status(RequestEntityTooLarge.limit(bodies.MAX_REQUEST_BODY_BYTES))
        except web.HTTPException as e:  # aiohttp's own refusals, still answered as a Status with their code
            err = ApiError(e.text or e.reason)
            err.code, err.reason = e.status, e.reason.replace(" ", "")
            return _status(err)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # a bug must still answer as a Status
            log.exception("internal error serving %s %s", request.method, request.path)
            return _status(InternalError(f"internal error: {type(e).__name__}: {e}"))

    # -- routing -------------------------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path in _UNAUTHENTICATED_PATHS:
            return web.Response(text="ok")
        if request.method == "GET" and _truthy(request.query.get("watch")):
            target = self._target(request)
            if target is not None and target[2] is None:
                return await self._watch(request, target[0], target[1])
        raw = b""
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                await self._offload(memory.release_free_memory)
                raise RequestEntityTooLarge.limit(bodies.MAX_REQUEST_BODY_BYTES) from None
        try:
            return await self._offload(self._dispatch_sync, request, path, raw)  # type: ignore[no-any-return]
        finally:
            self._heap_dirty = True
            if len(raw) >= memory.LARGE_BODY_BYTES:
                await self._offload(memory.release_free_memory)

    async def trim_heap_periodically(self, interval: float = memory.TRIM_INTERVAL) -> None:
        """Every ``interval`` seconds after requests were served, hand freed heap back (large answers too)."""
        while True:
            await asyncio.sleep(interval)
            if self._heap_dirty:
                self._heap_dirty = False
                await self._offload(memory.release_free_memory)

    def _target(self, request: web.Request) -> tuple[ResourceInfo, str | None, str | None] | None:
        """(resource, namespace, name) of a plain resource URL, None for anything else (bindings included)."""
        split = self._group_path(request.path.rstrip("/").strip("/").split("/"))
        if split is None:
            return None
        group, rest = split
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2:
            return None
        info = RESOURCES.get(rest[0])
        if info is None or info.group != group or info.plural not in self.store.served:
            return None
        if namespace is not None and not info.namespaced:
            return None
        return info, namespace, rest[1] if len(rest) == 2 else None

    def _dispatch_sync(self, request: web.Request, path: str, raw: bytes) -> web.StreamResponse:
        """Everything but watches, in a worker thread: routing, decoding, the store and the answer's encoding."""
        if request.method != "GET" and not (path.startswith("/api/") or path.startswith("/apis/")):
            raise MethodNotAllowed(f"the server does not allow this method on the requested resource ({path})")
        if request.method == "GET":
            found = self._discovery(request, path)
            if found is not None:
                return found
        split = self._group_path(path.strip("/").split("/"))
        if split is not None:
            return self._resource(request, split[0], split[1], raw)
        raise NotFound.path(path)

    def _group_path(self, parts: list[str]) -> tuple[str, list[str]] | None:
        """(group, the rest) of a path under a served group-version, None for anything else."""
        if parts[:2] == ["api", "v1"]:
            return "", parts[2:]
        if len(parts) >= 3 and parts[0] == "apis" and (parts[1], parts[2]) in discovery.group_versions(
                self.store.served):
            return parts[1], parts[3:]
        return None

    def _discovery(self, request: web.Request, path: str) -> web.Response | None:
        """Version, discovery and OpenAPI documents (legacy and aggregated discovery, OpenAPI v2 and v3)."""
        profile = self.store.profile.version
        served = self.store.served
        if path == "/version":
            return _json(discovery.version_info(profile))
        if path in ("/api", "/apis"):
            wanted = discovery.wanted_aggregated(request.headers.get("Accept", ""))
            if wanted is not None:
                resp = _json(discovery.aggregated(path == "/api", served, wanted))
                resp.headers["Content-Type"] = discovery.aggregated_media_type(wanted)
                return resp
            return _json(discovery.api_versions(self.address) if path == "/api" else
                         discovery.api_group_list(served))
        if path == "/api/v1":
            return _json(discovery.resource_list("", served))
        parts = path.strip("/").split("/")
        groups = discovery.group_versions(served)
        if len(parts) == 2 and parts[0] == "apis":
            group = discovery.api_group(parts[1], served)
            return _json(group) if group is not None else None
        if len(parts) == 3 and parts[0] == "apis" and (parts[1], parts[2]) in groups:
            return _json(discovery.resource_list(parts[1], served))
        if path == "/openapi/v2":
            accept = request.headers.get("Accept", "")
            if accept and "json" not in accept and "*/*" not in accept:
                raise NotAcceptable(f"/openapi/v2 is served as application/json only (asked for {accept}); "
                                    "the embedded cluster does not encode the protobuf OpenAPI document")
            return web.Response(text=openapi.swagger(profile, served), content_type="application/json")
        if path == "/openapi/v3":
            return _json(openapi.index(profile, ["", *(g for g, _ in groups)], served))
        if path == "/openapi/v3/api/v1":
            return web.Response(text=openapi.document(profile, "", served), content_type="application/json")
        if len(parts) == 5 and parts[:3] == ["openapi", "v3", "apis"] and (parts[3], parts[4]) in groups:
            return web.Response(text=openapi.document(profile, parts[3], served), content_type="application/json")
        return None

    def _resource(self, request: web.Request, group: str, rest: list[str], raw: bytes) -> web.StreamResponse:
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise NotFound.path(request.path)
        plural = rest[0]
        if plural == "bindings" and group == "" and namespace and len(rest) == 1 and request.method == "POST":
            body = self._body(request, raw)
            meta = body.get("metadata") if isinstance(body, dict) else None
            return self._bind(request, namespace, str((meta if isinstance(meta, dict) else {}).get("name", "")),
                              raw, body)
        info = RESOURCES.get(plural)
        if info is None or info.group != group or plural not in self.store.served:
            raise NotFound.path(request.path)
        if namespace is not None and not info.namespaced:
            raise NotFound.path(request.path)
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else None
        if name is not None and info.namespaced and namespace is None:
            raise NotFound.path(request.path)
        m = request.method
        if name is None:
            if m == "GET":
                return self._list(request, info, namespace)
            if m == "POST":
                return self._create(request, info, namespace, raw)
            if m == "DELETE":
                return self._delete_collection(request, info, namespace)
        else:
            if sub == "binding" and plural == "pods" and m == "POST":
                return self._bind(request, namespace or "", name, raw)
            if plural == "pods" and sub in _STREAMING_SUBRESOURCES:
                raise BadRequest(_no_streaming(sub, namespace or "", name))
            if sub not in (None, "status"):
                raise NotFound.path(request.path)
            if m == "GET":
                obj = self.store.get(plural, namespace, name)
                return self._respond(request, info, obj)
            if m == "PUT":
                return self._update(request, info, namespace, name, sub, raw)
            if m == "PATCH":
                return self._patch(request, info, namespace, name, sub, raw)
            if m == "DELETE" and sub is None:
                return self._delete(request, info, namespace, name, raw)
        raise MethodNotAllowed(f"the server does not allow this method on the requested resource "
                               f"({m} {request.path})")

    # -- helpers -------------------------------------------------------------------------------------------------

    @staticmethod
    def _body(request: web.Request, raw: bytes) -> Any:
        if not raw:
            raise BadRequest("the request body is empty; send the object as JSON or YAML")
        return bodies.decode(raw, request.content_type or "application/json")

    def _respond(self, request: web.Request, info: ResourceInfo, obj: Obj, status: int = 200,
                 warnings: list[str] | None = None) -> web.Response:
        if _wants_table(request):
            resp = _json(tables.table(info.plural, [obj], obj["metadata"].get("resourceVersion", ""),
                                      request.query.get("includeObject", "Metadata")), status)
        else:
            resp = _json(obj, status)
        for w in warnings or []:
            resp.headers.add("Warning", _warning_header(w))
        return resp

    @staticmethod
    def _field_validation(request: web.Request) -> str:
        """Upstream default is Warn (kubectl sends Strict): unknown fields are dropped with a warning."""
        return request.query.get("fieldValidation") or "Warn"

    @staticmethod
    def _dry_run(request: web.Request, body: Mapping[str, Any] | None = None) -> bool:
        if request.query.getall("dryRun", []):
            return True
        return bool(body and body.get("dryRun"))

    @staticmethod
    def _set_namespace(body: Any, info: ResourceInfo, namespace: str | None) -> None:
        if not isinstance(body, dict):
            raise BadRequest(f"the body must be a {info.kind} object")
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise BadRequest("metadata must be an object")
        if info.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise BadRequest("the namespace of the provided object does not match the namespace sent on the "
                                 "request")
            meta["namespace"] = namespace

    # -- verbs ---------------------------------------------------------------------------------------------------

    def _list(self, request: web.Request, info: ResourceInfo, namespace: str | None) -> web.Response:
        opts = listoptions.parse(request.query, watch=False)
        page = self.store.list_page(info.plural, namespace, request.query.get("labelSelector", ""),
                                    request.query.get("fieldSelector", ""), limit=opts.limit,
                                    continue_token=opts.continue_token, resource_version=opts.resource_version,
                                    resource_version_match=opts.resource_version_match)
        meta: dict[str, Any] = {"resourceVersion": page.resource_version}
        if page.continue_token:
            meta["continue"] = page.continue_token
        if page.remaining is not None:
            meta["remainingItemCount"] = page.remaining
        if _wants_table(request):
            table = tables.table(info.plural, page.items, page.resource_version,
                                 request.query.get("includeObject", "Metadata"))
            table["metadata"] = meta
            return _json(table)
        return _json({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": meta, "items": page.items})

    def _create(self, request: web.Request, info: ResourceInfo, namespace: str | None, raw: bytes) -> web.Response:
        body = self._body(request, raw)
        self._set_namespace(body, info, namespace)
        warnings: list[str] = []
        obj = self.store.create(info.plural, body, dry_run=self._dry_run(request),
                                field_validation=self._field_validation(request), warnings=warnings,
                                field_manager=_field_manager(request))
        return self._respond(request, info, obj, 201, warnings)

    def _update(self, request: web.Request, info: ResourceInfo, namespace: str | None, name: str,
                sub: str | None, raw: bytes) -> web.Response:
        body = self._body(request, raw)
        self._set_namespace(body, info, namespace)
        if body["metadata"].get("name", name) != name:
            raise BadRequest(f"the name of the object ({body['metadata'].get('name')}) does not match the name on "
                             f"the URL ({name})")
        body["metadata"]["name"] = name
        warnings: list[str] = []
        obj = self.store.update(info.plural, body, sub, dry_run=self._dry_run(request),
                                field_validation=self._field_validation(request), warnings=warnings,
                                field_manager=_field_manager(request))
        return self._respond(request, info, obj, 200, warnings)

    def _patch(self, request: web.Request, info: ResourceInfo, namespace: str | None, name: str,
               sub: str | None, raw: bytes) -> web.Response:
        ctype = request.content_type
        if ctype not in patches.PATCH_TYPES:
            raise UnsupportedMediaType(f"the body of the request was in an unknown format - accepted media types "
                                       f"include: {', '.join(patches.PATCH_TYPES)}")
        body = bodies.decode(raw or b"null", "application/yaml" if ctype == patches.APPLY else ctype, "patch")
        if ctype == patches.APPLY and not request.query.get("fieldManager"):
            raise BadRequest("PATCH, application/apply-patch+yaml: fieldManager is required for apply requests")
        force = listoptions.flag(request.query.get("force") or "")
        if force and ctype != patches.APPLY:
            raise Invalid("PatchOptions", "meta.k8s.io", "", [FieldError(
                CauseType.FORBIDDEN, "force", "Forbidden: may not be specified for non-apply patch")])
        existed = True
        if ctype == patches.APPLY:
            try:
                self.store.get(info.plural, namespace, name)
            except NotFound:
                existed = False
        warnings: list[str] = []
        obj = self.store.patch(info.plural, namespace, name, ctype, body, sub,
                               field_manager=_field_manager(request), dry_run=self._dry_run(request),
                               field_validation=self._field_validation(request), warnings=warnings, force=force)
        return self._respond(request, info, obj, 200 if existed else 201, warnings)

    def _delete(self, request: web.Request, info: ResourceInfo, namespace: str | None, name: str,
                raw: bytes) -> web.Response:
        opts: Any = {}
        if raw.strip():
            opts = bodies.decode(raw, protobuf.body_media_type(request.content_type), "DeleteOptions body")
        if not isinstance(opts, dict) or not isinstance(opts.get("preconditions") or {}, dict):
            raise BadRequest("the DeleteOptions body must be an object (preconditions an object too)")
        pre = opts.get("preconditions") or {}
        grace = opts.get("gracePeriodSeconds")
        grace = request.query.get("gracePeriodSeconds") if grace is None else grace
        try:
            grace_period = None if grace is None else int(grace)
        except (TypeError, ValueError):
            raise BadRequest(f"gracePeriodSeconds must be an integer number of seconds, not {grace!r}") from None
        obj = self.store.delete(info.plural, namespace, name, uid=pre.get("uid"),
                                resource_version=pre.get("resourceVersion"),
                                propagation=opts.get("propagationPolicy") or request.query.get("propagationPolicy"),
                                dry_run=self._dry_run(request, opts), grace_period=grace_period)
        pending = bool(obj["metadata"].get("finalizers")) and bool(obj["metadata"].get("deletionTimestamp"))
        return self._respond(request, info, obj, 202 if pending else 200)

    def _delete_collection(self, request: web.Request, info: ResourceInfo, namespace: str | None) -> web.Response:
        items = self.store.delete_collection(info.plural, namespace, request.query.get("labelSelector", ""),
                                             request.query.get("fieldSelector", ""),
                                             dry_run=self._dry_run(request))
        return _json({"kind": info.list_kind, "apiVersion": info.api_version,
                      "metadata": {"resourceVersion": self.store.resource_version}, "items": items})

    def _bind(self, request: web.Request, namespace: str, name: str, raw: bytes, body: Any = None) -> web.Response:
        if body is None:
            body = self._body(request, raw)
        target = body.get("target") if isinstance(body, dict) else None
        node = (target if isinstance(target, dict) else {}).get("name") or ""
        if not isinstance(node, str):
            raise BadRequest("target.name (the node) must be a string")
        self.store.bind_pod(namespace, name, node)
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)

    async def _watch(self, request: web.Request, info: ResourceInfo, namespace: str | None) -> web.StreamResponse:
        q = request.query
        label_selector, field_selector = q.get("labelSelector", ""), q.get("fieldSelector", "")
        parse_label_selector(label_selector)  # reject bad selectors with 400 before the stream starts
        parse_field_selector(field_selector, info, self.store.profile.version)
        try:
            timeout = float(q.get("timeoutSeconds") or _DEFAULT_WATCH_TIMEOUT)
        except ValueError:
            raise BadRequest(f"invalid timeoutSeconds {q.get('timeoutSeconds')!r}") from None
        opts = listoptions.parse(q, watch=True)  # 422 for combinations upstream refuses, before the stream
        as_table = _wants_table(request)
        as_proto = not as_table and protobuf.wants_protobuf(request.headers.get("Accept", ""))
        include = q.get("includeObject", "Metadata")
        await self.store.wait_for_resource_version(q.get("resourceVersion"))  # 504 if it never comes
        task = asyncio.current_task()
        assert task is not None
        self._watches.add(task)
        resp = web.StreamResponse(status=200, headers={"Content-Type": protobuf.WATCH_MEDIA_TYPE if as_proto
                                                       else "application/json",
                                                       "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        events = self.store.watch(info.plural, namespace, q.get("resourceVersion"),
                                  label_selector=label_selector, field_selector=field_selector,
                                  bookmark_interval=self.bookmark_interval if opts.allow_watch_bookmarks else None,
                                  copy_objects=False, send_initial_events=opts.send_initial_events,
                                  initial_events_end=bool(opts.send_initial_events) and opts.allow_watch_bookmarks)
        try:
            async with asyncio.timeout(timeout):
                async for ev in events:
                    await resp.write(await self._offload(protobuf.watch_frame, ev["type"], ev["object"], info)
                                     if as_proto else await self._offload(_encode_event, ev, info, as_table, include))
        except ApiError as e:
            await resp.write(protobuf.watch_frame("ERROR", e.status(), info) if as_proto
                             else json.dumps({"type": "ERROR", "object": e.status()}).encode() + b"\n")
        except TimeoutError:
            pass
        except ConnectionResetError:  # the client went away
            return resp
        finally:
            await events.aclose()
            self._watches.discard(task)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await resp.write_eof()
        return resp


def _encode_event(ev: Mapping[str, Any], info: ResourceInfo, as_table: bool, include: str) -> bytes:
    """One watch event line (in a worker thread: the object may be large)."""
    if as_table and ev["type"] != "BOOKMARK":
        obj = ev["object"]
        meta = obj.get("metadata")
        rv = meta.get("resourceVersion", "") if isinstance(meta, Mapping) else ""
        ev = {"type": ev["type"], "object": tables.table(info.plural, [obj], rv, include)}
    return json.dumps(ev).encode() + b"\n"


class EmbeddedApiServer:
    """HTTPS API server on loopback; ``start()`` runs it on its own event loop in a background thread.

    ``state_dir`` receives ``ca.crt``, ``server.crt``, ``server.key`` and (unless ``kubeconfig_path`` is given)
    ``kubeconfig``; without it a temporary directory is used and removed by ``stop()``.
    """

    def __init__(self, profile: str = "1.37", host: str = "127.0.0.1", port: int = 0,
                 state_dir: Path | None = None, *, feature_gates: Mapping[str, bool] | None = None,
                 kubeconfig_path: Path | None = None, token: str | None = None, store: Store | None = None,
                 history_size: int = 1000, bookmark_interval: float = 1.0) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the embedded API server binds to loopback only; got host {host!r} "
                             "(use 127.0.0.1)")
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = port
        if store is None:
            store = Store(profile, feature_gates, history_size=history_size)
            store.namespace_controller_delay = NAMESPACE_CONTROLLER_DELAY
        self.store = store
        self.token = token or secrets.token_urlsafe(32)
        self._own_dir = state_dir is None
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="snn-dra-apiserver-"))
        self.kubeconfig_path = Path(kubeconfig_path) if kubeconfig_path else self.state_dir / "kubeconfig"
        self.bookmark_interval = bookmark_interval
        self.ca_pem = b""
        self._api: ApiServerApp | None = None
        self._runner: web.AppRunner | None = None
        self._listener: TlsOnlyListener | None = None
        self._trimmer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def ca_path(self) -> Path:
        """PEM of the CA that signed the serving certificate (also inlined in the kubeconfig)."""
        return self.state_dir / "pki" / "ca.crt"

    # -- async hosting -----------------------------------------------------------------------------------------

    async def start_async(self) -> None:
        """Bind, write the kubeconfig, and serve on the running loop."""
        cert = generate_serving_cert(self.ca_path.parent)
        self.ca_pem = cert.ca_pem
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert.cert_path, cert.key_path)
        self._api = ApiServerApp(self.store, self.token, self.bookmark_interval)
        # handler_cancellation: a watch whose client disconnected is cancelled at once instead of lingering.
        self._runner = web.AppRunner(self._api.app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        assert self._runner.server is not None
        self._listener = TlsOnlyListener(self._runner.server, ctx, self.host, self.port)
        await self._listener.start()
        self.port = self._listener.port
        self._trimmer = asyncio.create_task(self._api.trim_heap_periodically(), name="apiserver-heap-trim")
        self._api.address = f"{self.host}:{self.port}"
        write_kubeconfig(self.kubeconfig_path, self.url, self.ca_pem, self.token)

    async def stop_async(self) -> None:
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
            self._trimmer = None
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self._api is not None:
            await self._api.cancel_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._api is not None:
            self._api.close()

    async def serve(self) -> None:
        """Serve until cancelled (for callers that own an event loop)."""
        await self.start_async()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop_async()

    # -- threaded hosting --------------------------------------------------------------------------------------

    def start(self) -> EmbeddedApiServer:
        if self._thread is not None:
            raise RuntimeError("the embedded API server is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as e:  # handed to the starting thread
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="snn-dra-apiserver", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None
            self._loop = None
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedApiServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
