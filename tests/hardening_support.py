"""Raw requests through the official client's transport (its TLS, CA and bearer token), for bodies its typed
methods would refuse to send: malformed objects, YAML, oversized or deeply nested payloads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def fields(self) -> set[str]:
        return {c.get("field", "") for c in (self.json().get("details") or {}).get("causes") or []}


def send(api: client.ApiClient, method: str, path: str, body: Any = None, *,
         content_type: str = "application/json", timeout: float | None = 60.0) -> Reply:
    """``body``: bytes/str are sent as they are, anything else as JSON."""
    raw: Any = body
    if body is not None and not isinstance(body, (bytes, str)):
        raw = json.dumps(body)
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    m, url, hdrs, _, _ = api.param_serialize(method, path, header_params=headers, auth_settings=["BearerToken"])
    # The client's own pool (TLS, CA, token headers) without its JSON re-encoding of str/bytes bodies.
    resp = api.rest_client.pool_manager.request(m, url, body=raw, headers=hdrs, timeout=timeout,
                                                preload_content=True, retries=False)
    return Reply(resp.status, resp.data)
