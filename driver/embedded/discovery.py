"""Legacy (unaggregated) discovery documents; kubectl falls back to them when the reply is plain JSON."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from snn_dra.driver.embedded.resources import RESOURCE_GROUP, RESOURCES

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def version_info(profile: str) -> dict[str, Any]:
    major, minor = profile.split(".")
    return {"major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
            "gitVersion": f"v{profile}.0-snn-dra", "gitCommit": "", "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z", "goVersion": "python", "compiler": "cpython",
            "platform": "linux/amd64"}


def api_versions(address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}


def _group() -> dict[str, Any]:
    gv = {"groupVersion": f"{RESOURCE_GROUP}/v1", "version": "v1"}
    return {"name": RESOURCE_GROUP, "versions": [gv], "preferredVersion": gv}


def api_group_list() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group()]}


def api_group() -> dict[str, Any]:
    return {"kind": "APIGroup", "apiVersion": "v1", **_group()}


def resource_list(group: str, served: Iterable[str]) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for plural in sorted(served):
        info = RESOURCES[plural]
        if info.group != group:
            continue
        entry: dict[str, Any] = {"name": plural, "singularName": info.singular, "namespaced": info.namespaced,
                                 "kind": info.kind, "verbs": VERBS}
        if info.short_names:
            entry["shortNames"] = list(info.short_names)
        if info.categories:
            entry["categories"] = list(info.categories)
        resources.append(entry)
        if info.has_status:
            resources.append({"name": f"{plural}/status", "singularName": "", "namespaced": info.namespaced,
                              "kind": info.kind, "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/v1" if group else "v1", "resources": resources}
