"""A raw-JSON face over the official client's ApiClient.

The driver publishes and reads objects whose exact JSON matters (a field the API server dropped must
be visible, and decoding thousands of devices into client models costs more than the work itself).
Authentication, TLS and the kubeconfig stay with the official client; only the body handling is ours.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final
from urllib.parse import quote

from kubernetes import client
from kubernetes.client.exceptions import ApiException

JSON = dict[str, Any]
Timeout = float | tuple[float, float]

DEFAULT_TIMEOUT: Final[tuple[float, float]] = (5.0, 30.0)
"""(connect, read) seconds of one plain request. Without a bound a half-open connection (API server
gone, no RST) blocks the caller forever; the publisher's reconcile loop would then never run again.
Watches set their own, longer read timeout."""


class KubeJSON:
    """Plain ``request(method, path) -> dict`` calls through an authenticated ``ApiClient``."""

    def __init__(self, api_client: client.ApiClient, *, timeout: Timeout = DEFAULT_TIMEOUT) -> None:
        self.api_client = api_client
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: Timeout | None = None,
    ) -> JSON:
        """Send one request; a non-2xx answer raises the client's own ApiException subclass.

        ``timeout`` overrides the instance's (connect, read) timeout for this call.
        """
        params = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()]
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        method_, url, header_params, body_, post = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        resp = self.api_client.call_api(
            method_,
            url,
            header_params=header_params,
            body=body_,
            post_params=post,
            _request_timeout=self.timeout if timeout is None else timeout,
        )
        data = resp.response.data
        if not 200 <= resp.status <= 299:
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            raise ApiException.from_response(http_resp=resp, body=text, data=None)
        decoded: JSON = json.loads(data) if data else {}
        return decoded

    def get(self, path: str, **query: str | int | bool) -> JSON:
        return self.request("GET", path, query=query)

    def create(self, path: str, body: Mapping[str, Any]) -> JSON:
        return self.request("POST", path, body=body)

    def replace(self, path: str, body: Mapping[str, Any]) -> JSON:
        return self.request("PUT", path, body=body)

    def delete(self, path: str, body: Mapping[str, Any] | None = None) -> JSON:
        return self.request("DELETE", path, body=body)

    def watch(self, path: str, *, timeout_seconds: int, **query: str | int | bool) -> Iterator[JSON]:
        """Stream watch events (``{"type", "object"}``) until the server closes the watch."""
        params = {**query, "watch": "true", "timeoutSeconds": timeout_seconds, "allowWatchBookmarks": "true"}
        flat = [(k, str(v)) for k, v in params.items()]
        _, url, header_params, _, _ = self.api_client.param_serialize(
            method="GET",
            resource_path=path,
            query_params=flat,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        resp = self.api_client.rest_client.pool_manager.request(
            "GET", url, headers=header_params, preload_content=False, timeout=timeout_seconds + 10
        )
        try:
            if resp.status != 200:
                raise ApiException(status=resp.status, reason=resp.reason)
            buf = b""
            for chunk in resp.stream(4096):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.release_conn()


def resource_path(group: str, version: str, plural: str, name: str | None = None, namespace: str | None = None) -> str:
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    base += f"/{plural}"
    if name:
        base += f"/{quote(name, safe='')}"
    return base
