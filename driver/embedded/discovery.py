"""Discovery documents: the legacy ones (``/api``, ``/apis``, ``/apis/<group>/<version>``) and aggregated discovery.

client-go and kubectl ask ``/api`` and ``/apis`` for ``APIGroupDiscoveryList`` first (apidiscovery.k8s.io v2, then
v2beta1, then plain JSON); answering it saves them one request per group-version. The media type of the answer
names what was served, as upstream, so a client that asked for several gets the one it can decode.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from snn_dra.driver.embedded.resources import RESOURCE_GROUP, RESOURCES, ResourceInfo

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
STATUS_VERBS = ["get", "patch", "update"]
AGGREGATED_GROUP = "apidiscovery.k8s.io"
AGGREGATED_VERSIONS = ("v2", "v2beta1")


def version_info(profile: str) -> dict[str, Any]:
    major, minor = profile.split(".")
    return {"major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
            "gitVersion": f"v{profile}.0-snn-dra", "gitCommit": "", "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z", "goVersion": "python", "compiler": "cpython",
            "platform": "linux/amd64"}


def api_versions(address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}


def group_versions(served: Iterable[str]) -> list[tuple[str, str]]:
    """The named (group, version) pairs served, resource.k8s.io first (this server's reason to exist)."""
    found = {(RESOURCES[p].group, RESOURCES[p].version) for p in served if RESOURCES[p].group}
    return sorted(found, key=lambda gv: (gv[0] != RESOURCE_GROUP, gv))


def _group(group: str, version: str) -> dict[str, Any]:
    gv = {"groupVersion": f"{group}/{version}", "version": version}
    return {"name": group, "versions": [gv], "preferredVersion": gv}


def api_group_list(served: Iterable[str]) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g, v) for g, v in group_versions(served)]}


def api_group(group: str, served: Iterable[str]) -> dict[str, Any] | None:
    for g, v in group_versions(served):
        if g == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(g, v)}
    return None


def _infos(group: str, served: Iterable[str]) -> list[ResourceInfo]:
    return [RESOURCES[p] for p in sorted(served) if RESOURCES[p].group == group]


def resource_list(group: str, served: Iterable[str]) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    infos = _infos(group, served)
    for info in infos:
        entry: dict[str, Any] = {"name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
                                 "kind": info.kind, "verbs": VERBS}
        if info.short_names:
            entry["shortNames"] = list(info.short_names)
        if info.categories:
            entry["categories"] = list(info.categories)
        resources.append(entry)
        if info.has_status:
            resources.append({"name": f"{info.plural}/status", "singularName": "", "namespaced": info.namespaced,
                              "kind": info.kind, "verbs": STATUS_VERBS})
    version = infos[0].version if infos else "v1"
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


def wanted_aggregated(accept: str) -> str | None:
    """The apidiscovery version (v2, v2beta1) the Accept header asks for before plain JSON, else None."""
    for part in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        media = part.split(";")[0].strip()
        if media in ("application/json", "*/*") and not params:
            return None  # plain JSON comes first
        if (media == "application/json" and params.get("g") == AGGREGATED_GROUP
                and params.get("as") == "APIGroupDiscoveryList" and params.get("v") in AGGREGATED_VERSIONS):
            return params["v"]
    return None


def aggregated_media_type(version: str) -> str:
    return f"application/json;g={AGGREGATED_GROUP};v={version};as=APIGroupDiscoveryList"


def _resource_discovery(info: ResourceInfo) -> dict[str, Any]:
    kind = {"group": info.group, "version": info.version, "kind": info.kind}
    out: dict[str, Any] = {"resource": info.plural, "responseKind": kind, "scope":
                           "Namespaced" if info.namespaced else "Cluster", "singularResource": info.singular,
                           "verbs": VERBS}
    if info.short_names:
        out["shortNames"] = list(info.short_names)
    if info.categories:
        out["categories"] = list(info.categories)
    if info.has_status:
        out["subresources"] = [{"subresource": "status", "responseKind": kind, "verbs": STATUS_VERBS}]
    return out


def aggregated(core: bool, served: Iterable[str], version: str) -> dict[str, Any]:
    """The APIGroupDiscoveryList of ``/api`` (core: the legacy group) or ``/apis`` (every named group)."""
    served = list(served)
    pairs = [("", "v1")] if core else group_versions(served)
    items = []
    for group, gv in pairs:
        resources = [_resource_discovery(i) for i in _infos(group, served)]
        meta = {"name": group} if group else {}
        items.append({"metadata": meta, "versions": [{"version": gv, "resources": resources,
                                                      "freshness": "Current"}]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"{AGGREGATED_GROUP}/{version}", "metadata": {},
            "items": items}
