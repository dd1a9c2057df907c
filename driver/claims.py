"""Reading a ResourceClaim for Prepare: the API lookup, its retries, and the checks on what came back.

The kubelet gives each call 45 s. A lookup retries transient failures (connection errors, 429, 5xx)
with exponential backoff but gives up after :data:`LOOKUP_DEADLINE_S`, so a struggling API server turns
into a per-claim error the kubelet retries later instead of a blown deadline for the whole batch.
Permanent answers (404, 403) are not retried. The Preparer only sees :class:`ClaimSource`, so tests
can feed claim JSON directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import tenacity
import urllib3
from kubernetes import client

LOOKUP_DEADLINE_S: Final = 15.0
"""Total budget for one claim's GET including retries (well inside the kubelet's 45 s)."""
REQUEST_TIMEOUT_S: Final = (3.0, 5.0)
"""(connect, read) timeout of a single GET."""

UID_RE: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DNS_LABEL_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class ClaimRef:
    """A claim as the kubelet names it in NodePrepare/NodeUnprepare."""

    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def check_ref(ref: ClaimRef) -> str:
    """Return an error text if any part of the reference is unfit to reach a file path, else ``""``.

    UID, namespace and name end up in CDI and checkpoint file names and env values, so they are
    held to the API server's own rules here rather than trusted.
    """
    problems = []
    if not UID_RE.match(ref.uid):
        problems.append(f"uid {ref.uid!r} is not a lower-case RFC 4122 UUID")
    if not DNS_LABEL_RE.match(ref.namespace):
        problems.append(f"namespace {ref.namespace!r} is not a DNS label")
    if len(ref.name) > 253 or not DNS_SUBDOMAIN_RE.match(ref.name):
        problems.append(f"name {ref.name!r} is not a DNS subdomain")
    if not problems:
        return ""
    return f"resourceclaim {ref.namespace!r}/{ref.name!r}: invalid reference from the kubelet: " + "; ".join(problems)


class ClaimLookupError(Exception):
    """The claim could not be read or is not fit to prepare; the message says which claim and why."""


class ClaimNotFoundError(ClaimLookupError):
    """The API server answered that the claim does not exist (404): proof, unlike an unreachable server."""


class ClaimSource(Protocol):
    """Where the Preparer reads claims from."""

    def get(self, namespace: str, name: str) -> Mapping[str, Any]:
        """Return the claim as Kubernetes JSON (camelCase); raise :class:`ClaimLookupError` on failure."""
        ...


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, client.ApiException):
        return exc.status in (0, 429) or exc.status >= 500
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


class KubeClaimSource:
    """Reads claims with the official client (``resource.k8s.io/v1``), raw JSON to skip model decoding."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        deadline_s: float = LOOKUP_DEADLINE_S,
        max_attempts: int = 8,
        initial_wait_s: float = 0.05,
        max_wait_s: float = 2.0,
    ) -> None:
        self._api = client.ResourceV1Api(api_client)
        self._retry = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_transient),
            stop=tenacity.stop_after_attempt(max_attempts) | tenacity.stop_after_delay(deadline_s),
            wait=tenacity.wait_exponential_jitter(multiplier=initial_wait_s, max=max_wait_s, jitter=initial_wait_s),
            reraise=True,
        )

    def _read(self, namespace: str, name: str) -> Mapping[str, Any]:
        resp: Any = self._api.read_namespaced_resource_claim(
            name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S
        )
        try:
            obj = json.loads(resp.data)
        finally:
            resp.release_conn()
        if not isinstance(obj, dict):
            raise ClaimLookupError(f"resourceclaim {namespace}/{name}: API server returned a non-object")
        return obj

    def get(self, namespace: str, name: str) -> Mapping[str, Any]:
        try:
            return self._retry(self._read, namespace, name)
        except client.ApiException as exc:
            if exc.status == 404:
                raise ClaimNotFoundError(f"resourceclaim {namespace}/{name}: not found in the API server") from None
            if exc.status == 403:
                raise ClaimLookupError(
                    f"resourceclaim {namespace}/{name}: forbidden; grant the plugin's ServiceAccount 'get' on "
                    "resource.k8s.io resourceclaims"
                ) from None
            raise ClaimLookupError(
                f"resourceclaim {namespace}/{name}: API server answered {exc.status} {exc.reason} after retries"
            ) from None
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, ValueError) as exc:
            raise ClaimLookupError(
                f"resourceclaim {namespace}/{name}: API server unreachable after retries ({type(exc).__name__}: {exc})"
            ) from None


def fetch_allocated(source: ClaimSource, ref: ClaimRef) -> Mapping[str, Any]:
    """Read the claim and check it is the one the kubelet means and that it is allocated."""
    obj = source.get(ref.namespace, ref.name)
    meta = obj.get("metadata")
    uid = meta.get("uid") if isinstance(meta, Mapping) else None
    if uid != ref.uid:
        raise ClaimLookupError(
            f"resourceclaim {ref}: claim was replaced (kubelet asked for uid {ref.uid}, API server has {uid}); "
            "the kubelet retries with the new claim"
        )
    status = obj.get("status")
    allocation = status.get("allocation") if isinstance(status, Mapping) else None
    if not isinstance(allocation, Mapping):
        raise ClaimLookupError(f"resourceclaim {ref}: not allocated (status.allocation is missing)")
    return obj
