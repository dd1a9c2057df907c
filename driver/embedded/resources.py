"""The resources the embedded API server serves: REST names, kinds, scope and which fields may be selected."""

from __future__ import annotations

from dataclasses import dataclass

RESOURCE_GROUP = "resource.k8s.io"
RBAC_GROUP = "rbac.authorization.k8s.io"
ADMISSION_GROUP = "admissionregistration.k8s.io"


@dataclass(frozen=True)
class ResourceInfo:
    plural: str
    singular: str
    kind: str
    group: str  # "" for core
    version: str
    namespaced: bool
    has_status: bool
    field_selectors: frozenset[str]
    short_names: tuple[str, ...] = ()
    name_rule: str = "subdomain"  # subdomain | label | path
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"


_META = frozenset({"metadata.name", "metadata.namespace"})

RESOURCES: dict[str, ResourceInfo] = {r.plural: r for r in (
    ResourceInfo("namespaces", "namespace", "Namespace", "", "v1", False, True, _META | {"status.phase"},
                 ("ns",), name_rule="label"),
    ResourceInfo("nodes", "node", "Node", "", "v1", False, True, _META | {"spec.unschedulable"}, ("no",)),
    ResourceInfo("pods", "pod", "Pod", "", "v1", True, True,
                 _META | {"spec.nodeName", "status.phase", "spec.schedulerName", "spec.restartPolicy",
                          "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName"}, ("po",),
                 categories=("all",)),
    ResourceInfo("events", "event", "Event", "", "v1", True, False,
                 _META | {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                          "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                          "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"},
                 ("ev",), name_rule="path"),
    ResourceInfo("deviceclasses", "deviceclass", "DeviceClass", RESOURCE_GROUP, "v1", False, False, _META),
    ResourceInfo("resourceclaims", "resourceclaim", "ResourceClaim", RESOURCE_GROUP, "v1", True, True, _META),
    ResourceInfo("resourceclaimtemplates", "resourceclaimtemplate", "ResourceClaimTemplate", RESOURCE_GROUP, "v1",
                 True, False, _META),
    ResourceInfo("resourceslices", "resourceslice", "ResourceSlice", RESOURCE_GROUP, "v1", False, False,
                 _META | {"spec.nodeName", "spec.driver", "spec.pool.name"}),
    ResourceInfo("devicetaintrules", "devicetaintrule", "DeviceTaintRule", RESOURCE_GROUP, "v1", False, True, _META),
    # What `kubectl apply -k deploy/base` (and its overlays) creates: stored and served with their upstream schemas
    # (``STRUCTURAL_ONLY``), so the real install path runs offline. No controller acts on them here (a DaemonSet
    # starts no pods; the plugin runs as a process of `snn-dra cluster up`).
    ResourceInfo("serviceaccounts", "serviceaccount", "ServiceAccount", "", "v1", True, False, _META, ("sa",)),
    ResourceInfo("configmaps", "configmap", "ConfigMap", "", "v1", True, False, _META, ("cm",)),
    ResourceInfo("resourcequotas", "resourcequota", "ResourceQuota", "", "v1", True, True, _META, ("quota",)),
    ResourceInfo("clusterroles", "clusterrole", "ClusterRole", RBAC_GROUP, "v1", False, False, _META,
                 name_rule="path"),
    ResourceInfo("clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", RBAC_GROUP, "v1", False, False,
                 _META, name_rule="path"),
    ResourceInfo("roles", "role", "Role", RBAC_GROUP, "v1", True, False, _META, name_rule="path"),
    ResourceInfo("rolebindings", "rolebinding", "RoleBinding", RBAC_GROUP, "v1", True, False, _META,
                 name_rule="path"),
    ResourceInfo("daemonsets", "daemonset", "DaemonSet", "apps", "v1", True, True, _META, ("ds",),
                 categories=("all",)),
    ResourceInfo("priorityclasses", "priorityclass", "PriorityClass", "scheduling.k8s.io", "v1", False, False, _META,
                 ("pc",)),
    ResourceInfo("validatingadmissionpolicies", "validatingadmissionpolicy", "ValidatingAdmissionPolicy",
                 ADMISSION_GROUP, "v1", False, True, _META, categories=("api-extensions",)),
    ResourceInfo("validatingadmissionpolicybindings", "validatingadmissionpolicybinding",
                 "ValidatingAdmissionPolicyBinding", ADMISSION_GROUP, "v1", False, False, _META,
                 categories=("api-extensions",)),
)}

STRUCTURAL_ONLY = frozenset({"serviceaccounts", "configmaps", "resourcequotas", "clusterroles", "clusterrolebindings",
                             "roles", "rolebindings", "daemonsets", "priorityclasses", "validatingadmissionpolicies",
                             "validatingadmissionpolicybindings"})
"""Kinds checked against their upstream schema and metadata rules only (no semantic validation is ported)."""


# Field selectors added after 1.34: (resource, field) -> first Kubernetes version that accepts it.
_FIELD_SELECTOR_SINCE: dict[tuple[str, str], str] = {
    ("resourceslices", "spec.pool.name"): "1.37",  # ResourceSliceSelectorPoolName
}


def field_selectors(info: ResourceInfo, version: str | None = None) -> frozenset[str]:
    """The fields ``info`` can be selected by in Kubernetes ``version`` ("1.34".."1.37"; None = newest)."""
    if version is None:
        return info.field_selectors
    minor = int(version.split(".")[1])
    return frozenset(
        f for f in info.field_selectors
        if (since := _FIELD_SELECTOR_SINCE.get((info.plural, f))) is None or minor >= int(since.split(".")[1])
    )


def resource_info(resource: str) -> ResourceInfo:
    try:
        return RESOURCES[resource]
    except KeyError:
        raise KeyError(f"unknown resource {resource!r}; served: {', '.join(sorted(RESOURCES))}") from None
