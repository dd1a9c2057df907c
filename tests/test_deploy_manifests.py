"""The Kubernetes manifests (deploy/), the kind cluster config and scripts (hack/), and the e2e guard.

Every kustomization is rendered with kubectl and each object is checked against the upstream OpenAPI
schemas of 1.34 to 1.37 in strict mode (unknown fields fail). On top of that, the checks tie the
manifests to the code they deploy: DeviceClass and demo selectors compile with the project's CEL
adapter and select exactly the devices the project publishes, the DaemonSet's arguments parse with the
real CLI and mount the paths the plugin uses by default, its probes are native gRPC probes on the port the
plugin's liveness service is given, the host's /dev and /sys reach only the production overlay, the RBAC rules
cover every API call the plugin makes, and the admission policy (evaluated with a real CEL engine) keeps the
plugin's slice writes to its own node and driver.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml
from cel_expr_python import cel
from cel_expr_python.ext import ext_optional
from google.protobuf import descriptor_pool

from snn_dra.api import attributes as attr
from snn_dra.api.attributes import DRIVER_NAME
from snn_dra.api.config import merge_configs, parse_config
from snn_dra.api.nodeconfig import NodeConfig
from snn_dra.driver.backends import load_backend, parse_node_config
from snn_dra.driver.cel import CelRuntimeError, compile_selector, device_view
from snn_dra.driver.cli.app import app
from snn_dra.driver.cli.plugin import DEFAULT_CDI_DIR
from snn_dra.driver.model import build_model
from snn_dra.driver.plugin.sockets import DEFAULT_PLUGIN_DIR, DEFAULT_REGISTRY_DIR
from snn_dra.driver.slices import build_slices

REPO = Path(__file__).resolve().parent.parent
KUBECTL = shutil.which("kubectl")
pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is needed to render the kustomizations"),
]

BASE = "deploy/base"
KIND = "deploy/overlays/kind"
PRODUCTION = "deploy/overlays/production"
LOCAL = "deploy/overlays/local"
DEMO = "deploy/demo"
KUSTOMIZATIONS = (BASE, KIND, PRODUCTION, LOCAL, DEMO)
DRIVER_OVERLAYS = (KIND, PRODUCTION)
VERSIONS = ("1.34", "1.35", "1.36", "1.37")
SCRIPTS = ("hack/kind-up.sh", "hack/build-image.sh", "hack/kind-demo.sh")

Obj = dict[str, Any]


# ---------------------------------------------------------------------------------------------- helpers
_rendered: dict[str, list[Obj]] = {}


def render(kustomization: str) -> list[Obj]:
    """``kubectl kustomize`` output as objects (cached: the files do not change during a run)."""
    if kustomization not in _rendered:
        proc = subprocess.run(
            [str(KUBECTL), "kustomize", str(REPO / kustomization)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"kubectl kustomize {kustomization} failed: {proc.stderr}"
        _rendered[kustomization] = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return _rendered[kustomization]


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[Obj], kind: str) -> Obj:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def plugin_container(objects: list[Obj]) -> Obj:
    [container] = one(objects, "DaemonSet")["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def published_devices(config_file: str, node: str = "node-a") -> list[Obj]:
    """spec.devices[] of the slices the project builds for a node config: what the selectors will see."""
    config = parse_node_config(yaml.safe_load((REPO / config_file).read_text()), config_file)
    model = build_model(load_backend(config, node).discover(), config.publish)
    return [d for s in build_slices(model, node) for d in s["spec"].get("devices", [])]


def device_classes() -> dict[str, list[str]]:
    """DeviceClass name -> its CEL expressions."""
    return {
        o["metadata"]["name"]: [s["cel"]["expression"] for s in o["spec"]["selectors"]]
        for o in of_kind(render(BASE), "DeviceClass")
    }


def demo_requests() -> list[tuple[str, Obj]]:
    """(template name, exactly-or-subrequest) for every device request of the demo's claim templates."""
    out = []
    for rct in of_kind(render(DEMO), "ResourceClaimTemplate"):
        for request in rct["spec"]["spec"]["devices"]["requests"]:
            name = rct["metadata"]["name"]
            if "exactly" in request:
                out.append((name, request["exactly"]))
            out += [(name, sub) for sub in request.get("firstAvailable", [])]
    return out


def mounts_by_path(objects: list[Obj]) -> dict[str, tuple[Obj, Obj]]:
    """Container mount path -> (volumeMount, volume)."""
    pod = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {m["mountPath"]: (m, volumes[m["name"]]) for m in plugin_container(objects)["volumeMounts"]}


# ------------------------------------------------------------------------------------ rendering, schemas
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_kustomization_renders_named_objects(kustomization: str) -> None:
    objects = render(kustomization)
    assert objects
    for o in objects:
        assert o.get("apiVersion") and o.get("kind") and o.get("metadata", {}).get("name"), o


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_rendered_objects_are_valid_upstream_objects(kustomization: str, version: str) -> None:
    problems = []
    for o in render(kustomization):
        where = f"{o['kind']} {o['metadata']['name']}"
        try:
            kubernetes_validate.validate(o, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            problems.append(f"{where}: {'.'.join(str(p) for p in e.path)}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            problems.append(f"{where}: {e.message}")
    assert not problems, f"{kustomization} against Kubernetes {version}:\n" + "\n".join(problems)


def test_strict_schema_validation_rejects_an_unknown_field() -> None:
    """Control for the test above: strict mode must catch a misspelt field in a rendered DaemonSet."""
    daemonset = yaml.safe_load(yaml.safe_dump(one(render(BASE), "DaemonSet")))
    daemonset["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, "1.37", strict=True)


# ------------------------------------------------------------------------------------------ DeviceClasses
TYPE_OF_CLASS = {
    "snn-chip": ("chip", None),
    "snn-core-group": ("coreGroup", None),
    "snn-neuron-core": ("neuronCore", None),
    "snn-spike-router": ("spikeRouter", None),
    "snn-event-queue": ("eventQueue", None),
    "snn-loihi2-chip": ("chip", "loihi2"),
    "snn-spinnaker2-chip": ("chip", "spinnaker2"),
    "snn-akida-chip": ("chip", "akida"),
}


def test_there_is_a_device_class_per_device_type_and_family_chip() -> None:
    assert set(device_classes()) == set(TYPE_OF_CLASS)
    assert {t for t, _ in TYPE_OF_CLASS.values()} == {str(t) for t in attr.DeviceType}
    assert {f for _, f in TYPE_OF_CLASS.values() if f} == {str(f) for f in attr.Family}


@pytest.mark.parametrize("config_file", ["deploy/node-configs/mixed.yaml", "deploy/overlays/kind/node-config.yaml"])
def test_device_classes_select_exactly_their_devices(config_file: str) -> None:
    devices = published_devices(config_file)
    for name, expressions in device_classes().items():
        selectors = [compile_selector(e) for e in expressions]
        device_type, family = TYPE_OF_CLASS[name]
        for d in devices:
            want = d["attributes"]["type"]["string"] == device_type and (
                family is None or d["attributes"]["family"]["string"] == family
            )
            got = all(s.matches(device_view(DRIVER_NAME, d)) for s in selectors)
            assert got == want, f"DeviceClass {name} on device {d['name']} of {config_file}"


def test_every_device_class_selects_some_device_of_the_example_configs() -> None:
    devices = published_devices("deploy/node-configs/mixed.yaml") + published_devices(
        "deploy/overlays/kind/node-config.yaml"
    )
    for name, expressions in device_classes().items():
        selectors = [compile_selector(e) for e in expressions]
        assert any(all(s.matches(device_view(DRIVER_NAME, d)) for s in selectors) for d in devices), name


def test_device_class_selectors_never_fail_on_other_drivers_devices() -> None:
    """A CEL runtime error aborts the scheduling of the pod, so other drivers' devices must just not match."""
    foreign = device_view("gpu.example.com", {"name": "gpu-0", "attributes": {"type": {"string": "chip"}}})
    for name, expressions in device_classes().items():
        for expression in expressions:
            try:
                assert not compile_selector(expression).matches(foreign), name
            except CelRuntimeError as e:  # pragma: no cover - the failure message is the point
                pytest.fail(f"DeviceClass {name}: selector raises on a foreign device: {e}")


def test_device_class_configs_are_valid_and_mark_only_shared_devices_shared() -> None:
    """A class config reaches every claim of the class: ``sharing: shared`` on a non-shared type would fail Prepare."""
    for dc in of_kind(render(BASE), "DeviceClass"):
        for entry in dc["spec"].get("config", []):
            assert entry["opaque"]["driver"] == DRIVER_NAME
            config = parse_config(entry["opaque"]["parameters"])
            if config.sharing is not None and config.sharing.value == "shared":
                assert TYPE_OF_CLASS[dc["metadata"]["name"]][0] in ("spikeRouter", "eventQueue"), dc["metadata"]


# ------------------------------------------------------------------------------------------------- demo
def test_demo_claims_use_only_device_classes_of_deploy_base() -> None:
    classes = set(device_classes())
    used = {request["deviceClassName"] for _, request in demo_requests()}
    assert used, "the demo requests no device class"
    assert used <= classes, f"unknown device classes in deploy/demo: {sorted(used - classes)}"


def test_demo_selectors_compile_and_match_devices_of_the_kind_node() -> None:
    devices = published_devices("deploy/overlays/kind/node-config.yaml")
    classes = device_classes()
    for template, request in demo_requests():
        extra = [s["cel"]["expression"] for s in request.get("selectors", [])]
        selectors = [compile_selector(e) for e in classes[request["deviceClassName"]] + extra]
        matching = [d for d in devices if all(s.matches(device_view(DRIVER_NAME, d)) for s in selectors)]
        assert matching, f"template {template}: no device of the kind node matches {request}"


def test_demo_constraints_and_capacity_requests_use_published_names() -> None:
    published = {v for k, v in vars(attr).items() if k.isupper() and isinstance(v, str)}
    for rct in of_kind(render(DEMO), "ResourceClaimTemplate"):
        devices = rct["spec"]["spec"]["devices"]
        for constraint in devices.get("constraints", []):
            domain, _, name = constraint["matchAttribute"].partition("/")
            assert domain == DRIVER_NAME and name in published, constraint
        for _, request in [(None, r.get("exactly", {})) for r in devices["requests"]]:
            for key in request.get("capacity", {}).get("requests", {}):
                # Capacity request keys must match the published capacity names exactly (no domain is added).
                assert key in {attr.CAP_EVENT_THROUGHPUT_MEPS, attr.CAP_QUEUE_DEPTH}, key


def test_demo_opaque_configs_are_valid_snn_configs() -> None:
    """Class configs first, then claim configs in order, a later field wins: check what each request ends up with."""
    split = None
    for rct in of_kind(render(DEMO), "ResourceClaimTemplate"):
        devices = rct["spec"]["spec"]["devices"]
        requests = [r["name"] for r in devices["requests"]]
        for entry in devices.get("config", []):
            assert entry["opaque"]["driver"] == DRIVER_NAME
            parse_config(entry["opaque"]["parameters"])
            assert set(entry.get("requests", requests)) <= set(requests), rct["metadata"]["name"]
        if rct["metadata"]["name"] == "split-model":
            split = {
                r: merge_configs(
                    parse_config(e["opaque"]["parameters"]) for e in devices["config"] if r in e.get("requests", [r])
                )
                for r in requests
            }
    assert split is not None, "deploy/demo has no split-model template"
    assert {r: (c.split_stage.index if c.split_stage else None) for r, c in split.items()} == {
        "encoder": 0,
        "decoder": 1,
    }


def test_demo_pods_reference_their_templates_and_requests() -> None:
    objects = render(DEMO)
    templates = {
        o["metadata"]["name"]: [r["name"] for r in o["spec"]["spec"]["devices"]["requests"]]
        for o in of_kind(objects, "ResourceClaimTemplate")
    }
    for pod in of_kind(objects, "Pod"):
        claims = {c["name"]: c["resourceClaimTemplateName"] for c in pod["spec"]["resourceClaims"]}
        assert set(claims.values()) <= set(templates), pod["metadata"]["name"]
        for container in pod["spec"]["containers"]:
            for use in container["resources"]["claims"]:
                assert use["name"] in claims
                if "request" in use:
                    assert use["request"] in templates[claims[use["name"]]]
    assert {p["metadata"]["namespace"] for p in of_kind(objects, "Pod")} == {"snn-demo"}


# -------------------------------------------------------------------------------------------- DaemonSet
@pytest.mark.parametrize("kustomization", (BASE, *DRIVER_OVERLAYS))
def test_daemonset_mounts_the_plugin_default_paths_at_the_host_paths(kustomization: str) -> None:
    mounts = mounts_by_path(render(kustomization))
    for path in (DEFAULT_PLUGIN_DIR, DEFAULT_REGISTRY_DIR, DEFAULT_CDI_DIR):
        assert str(path) in mounts, f"{path} is not mounted"
        mount, volume = mounts[str(path)]
        # The DRA socket path is advertised to the kubelet verbatim: inside and outside must be equal.
        assert volume.get("hostPath", {}).get("path") == str(path), volume
        assert not mount.get("readOnly", False), f"{path} must be writable"


def _host_paths(objects: list[Obj]) -> set[str]:
    pod = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    return {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}


@pytest.mark.parametrize("kustomization", (BASE, KIND, LOCAL))
def test_the_hosts_dev_and_sys_are_not_mounted_where_the_simulated_backend_runs(kustomization: str) -> None:
    objects = render(kustomization)
    assert not {"/dev", "/sys"} & set(mounts_by_path(objects)), "the simulated backend needs neither /dev nor /sys"
    assert not {"/dev", "/sys"} & _host_paths(objects)


def test_only_the_production_overlay_mounts_the_hosts_dev_and_sys_read_only() -> None:
    mounts = mounts_by_path(render(PRODUCTION))
    for host in ("/dev", "/sys"):
        mount, volume = mounts[host]
        assert volume["hostPath"] == {"path": host, "type": "Directory"}, volume
        assert mount.get("readOnly") is True and mount.get("recursiveReadOnly") == "IfPossible", mount


@pytest.mark.parametrize("kustomization", DRIVER_OVERLAYS)
def test_daemonset_arguments_parse_with_the_real_cli(kustomization: str) -> None:
    objects = render(kustomization)
    container = plugin_container(objects)
    values = {"NODE_NAME": "node-a", "POD_UID": "0b1c2d3e-0000-4000-8000-000000000001"}
    args = [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], a) for a in container["args"]]
    assert container["command"][:1] == ["snn-dra"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "snn-dra" in scripts, "the image's command is not a console script of the package"

    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    [verb] = container["command"][1:]
    command = group.get_command(typer.Context(group), verb)
    assert command is not None, f"the CLI has no {verb!r} command"
    ctx = command.make_context(verb, list(args))
    assert ctx.params["node_name"] == "node-a"
    assert ctx.params["pod_uid"] == values["POD_UID"]

    # The node config the CLI is told to read is the generated ConfigMap's key, and a valid NodeConfig.
    config_path = Path(ctx.params["node_config"])
    mount, volume = mounts_by_path(objects)[str(config_path.parent)]
    assert mount.get("readOnly") is True
    [item] = [i for i in volume["configMap"]["items"] if i["path"] == config_path.name]
    [config_map] = [c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"] == volume["configMap"]["name"]]
    NodeConfig.model_validate(yaml.safe_load(config_map["data"][item["key"]]))


@pytest.mark.parametrize("kustomization", (BASE, *DRIVER_OVERLAYS))
def test_daemonset_supports_seamless_upgrades_and_runs_everywhere(kustomization: str) -> None:
    objects = render(kustomization)
    daemonset = one(objects, "DaemonSet")
    assert daemonset["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = daemonset["spec"]["template"]["spec"]
    env = {
        e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in plugin_container(objects)["env"]
    }
    assert env["NODE_NAME"] == "spec.nodeName"
    assert env["POD_UID"] == "metadata.uid"
    assert pod["priorityClassName"] == "system-node-critical"
    assert {"operator": "Exists"} in pod["tolerations"]
    sa = one(objects, "ServiceAccount")["metadata"]
    assert pod["serviceAccountName"] == sa["name"] and daemonset["metadata"]["namespace"] == sa["namespace"]
    assert plugin_container(objects)["resources"]["requests"]


@pytest.mark.parametrize(("overlay", "pull_policy"), [(KIND, "IfNotPresent"), (LOCAL, "Never")])
def test_dev_overlays_use_the_locally_loaded_dev_image_and_the_example_node_config(
    overlay: str, pull_policy: str
) -> None:
    objects = render(overlay)
    container = plugin_container(objects)
    assert container["image"] == "ghcr.io/snn-dra/snn-dra:dev"
    assert container["imagePullPolicy"] == pull_policy
    [config_map] = of_kind(objects, "ConfigMap")
    text = config_map["data"]["node-config.yaml"]
    assert text == (REPO / "deploy/node-configs/kapoho-point.yaml").read_text(), (
        f"{overlay}/node-config.yaml differs from deploy/node-configs/kapoho-point.yaml; copy it again"
    )
    assert NodeConfig.model_validate(yaml.safe_load(text)).backend == "simulated"


def test_production_overlay_runs_the_sysfs_backend_only_on_labelled_nodes() -> None:
    objects = render(PRODUCTION)
    [config_map] = of_kind(objects, "ConfigMap")
    config = NodeConfig.model_validate(yaml.safe_load(config_map["data"]["node-config.yaml"]))
    assert config.backend == "sysfs"
    mounts = mounts_by_path(objects)
    for root in (config.dev_root, config.sysfs_root):
        assert mounts[root][1]["hostPath"]["path"] == root, f"{root} is not the host's {root}"
    pod = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    assert pod["nodeSelector"], "production must select the accelerator nodes"
    assert re.fullmatch(r"ghcr\.io/snn-dra/snn-dra:v\d+\.\d+\.\d+", plugin_container(objects)["image"])


KUBELET_PORTS = {10248, 10250, 10255, 10256}
"""healthz, the kubelet API, its read-only port, kube-proxy's healthz (all possibly bound on the host)."""


@pytest.mark.parametrize("kustomization", (BASE, *DRIVER_OVERLAYS))
def test_probes_are_native_grpc_probes_of_the_plugins_liveness_service(kustomization: str) -> None:
    """Startup, readiness and liveness ask grpc.health.v1 on the port the CLI is given (driver/plugin/liveness.py)."""
    container = plugin_container(render(kustomization))
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    command = group.get_command(typer.Context(group), "kubelet-plugin")
    assert command is not None
    args = [a for a in container["args"] if a.startswith("--health-port")]
    port = command.make_context("kubelet-plugin", args).params["health_port"]
    assert isinstance(port, int) and 0 < port < 65536, "the DaemonSet must turn the liveness service on"
    assert port not in KUBELET_PORTS and not 32768 <= port <= 60999, "a kubelet port or an ephemeral one"
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container[kind]
        assert set(probe) & {"exec", "httpGet", "tcpSocket", "grpc"} == {"grpc"}, f"{kind} must be a native grpc probe"
        assert probe["grpc"]["port"] == port, f"{kind} probes port {probe['grpc']['port']}, the plugin serves {port}"
        assert probe["grpc"].get("service", "") in ("", DRIVER_NAME)  # what LivenessServicer answers
        assert probe["timeoutSeconds"] >= 3, f"{kind}: the check makes two calls of up to 2 s each"
    assert "ports" not in container, "a declared port becomes a hostPort under hostNetwork and blocks maxSurge"


# ------------------------------------------------------------------------------------- RBAC, admission
REQUIRED_RULES = [
    # (apiGroup, resource, verb, resourceName or None) from kubelet-grpc.md §7
    ("resource.k8s.io", "resourceclaims", "get", None),
    ("", "nodes", "get", None),
    ("", "events", "create", None),  # the Warning Event of a damaged prepare state (driver/events.py)
    *[
        ("resource.k8s.io", "resourceslices", verb, None)
        for verb in ("get", "list", "watch", "create", "update", "patch", "delete")
    ],
]


def _allows(rules: list[Obj], group: str, resource: str, verb: str, name: str | None) -> bool:
    for rule in rules:
        names = rule.get("resourceNames")
        if (
            group in rule.get("apiGroups", [])
            and resource in rule.get("resources", [])
            and verb in rule.get("verbs", [])
            and (not names or name in names)
        ):
            return True
    return False


def test_cluster_role_covers_every_call_of_the_plugin_and_is_bound_to_its_service_account() -> None:
    objects = render(BASE)
    role = one(objects, "ClusterRole")
    missing = [r for r in REQUIRED_RULES if not _allows(role["rules"], *r)]
    assert not missing, f"ClusterRole {role['metadata']['name']} lacks {missing}"
    # Nothing broader than needed: no wildcard, no access to claims of other drivers by name.
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
    # ... and nothing the driver does not do: it writes no claim status (those rules return with that code).
    granted = [
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    ]
    extra = sorted(set(granted) - {req[:3] for req in REQUIRED_RULES})
    assert granted and not extra, f"ClusterRole grants more than the plugin uses: {extra}"
    binding = one(objects, "ClusterRoleBinding")
    sa = one(objects, "ServiceAccount")["metadata"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert {"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]} in binding["subjects"]


def test_admission_policy_limits_the_plugins_slice_writes_to_its_node() -> None:
    objects = render(BASE)
    policy = one(objects, "ValidatingAdmissionPolicy")
    binding = one(objects, "ValidatingAdmissionPolicyBinding")
    sa = one(objects, "ServiceAccount")["metadata"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    [rule] = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["resourceslices"] and set(rule["operations"]) == {"CREATE", "UPDATE", "DELETE"}
    [condition] = policy["spec"]["matchConditions"]
    assert f'"system:serviceaccount:{sa["namespace"]}:{sa["name"]}"' in condition["expression"]
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    assert "authentication.kubernetes.io/node-name" in variables["callerNode"]
    assert "oldObject" in variables["sliceNode"], "DELETE has no object: the node must come from oldObject"
    assert "object.?spec" in variables["newDriver"] and "oldObject.?spec" in variables["oldDriver"]
    expressions = [v["expression"] for v in policy["spec"]["validations"]]
    assert "variables.callerNode == variables.sliceNode" in expressions
    assert sum(f'== "{DRIVER_NAME}"' in e for e in expressions) == 2, "the driver is checked on old and new objects"


def _policy_verdict(policy: Obj, request: Obj, obj: Obj | None, old: Obj | None) -> tuple[bool, bool, str]:
    """(matched, allowed, message) of the policy for one admission request, evaluated as the API server does:
    match conditions, then the variables in order, then every validation (the first failure's message)."""
    dyn_map = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
    env = cel.NewEnv(
        descriptor_pool.Default(),
        variables={"request": dyn_map, "object": cel.Type.DYN, "oldObject": cel.Type.DYN, "variables": dyn_map},
        extensions=[ext_optional.ExtOptional()],
    )
    data: dict[str, Any] = {"request": request, "object": obj, "oldObject": old, "variables": {}}

    def run(expression: str) -> Any:
        result = env.compile(expression).eval(data=data)
        assert result.type() != cel.Type.ERROR, f"{expression}: {result.value()}"
        return result.value()

    if not all(run(c["expression"]) is True for c in policy["spec"]["matchConditions"]):
        return False, True, ""
    for variable in policy["spec"]["variables"]:
        data["variables"] = {**data["variables"], variable["name"]: run(variable["expression"])}
    for validation in policy["spec"]["validations"]:
        if run(validation["expression"]) is not True:
            message = (
                run(validation["messageExpression"]) if "messageExpression" in validation else validation["message"]
            )
            return True, False, str(message)
    return True, True, ""


def test_admission_policy_lets_the_plugin_write_only_its_own_nodes_slices() -> None:
    objects = render(BASE)
    policy = one(objects, "ValidatingAdmissionPolicy")
    sa = one(objects, "ServiceAccount")["metadata"]
    plugin = f"system:serviceaccount:{sa['namespace']}:{sa['name']}"

    def request(operation: str, user: str = plugin, node: str | None = "node-a") -> Obj:
        extra = {"authentication.kubernetes.io/node-name": [node]} if node else {}
        return {"operation": operation, "userInfo": {"username": user, "extra": extra}}

    def slice_on(node: str, driver: str = DRIVER_NAME) -> Obj:
        return {"spec": {"driver": driver, "nodeName": node}}

    own, other, cluster_wide = slice_on("node-a"), slice_on("node-b"), {"spec": {"allNodes": True}}
    assert _policy_verdict(policy, request("CREATE"), own, None) == (True, True, "")
    assert _policy_verdict(policy, request("UPDATE"), own, own) == (True, True, "")
    assert _policy_verdict(policy, request("DELETE"), None, own) == (True, True, "")
    for operation, obj, old in (("CREATE", other, None), ("UPDATE", other, other), ("DELETE", None, other)):
        matched, allowed, message = _policy_verdict(policy, request(operation), obj, old)
        assert matched and not allowed and "node-b" in message, (operation, message)
    matched, allowed, message = _policy_verdict(policy, request("CREATE"), cluster_wide, None)
    assert not allowed and "without spec.nodeName" in message
    matched, allowed, message = _policy_verdict(policy, request("CREATE", node=None), own, None)
    assert not allowed and "ServiceAccountTokenPodNodeInfo" in message
    # Another driver's slice on the plugin's own node: a stolen token must not create, change or delete it.
    foreign = slice_on("node-a", "gpu.example.com")
    for operation, obj, old in (
        ("CREATE", foreign, None),
        ("UPDATE", foreign, foreign),
        ("UPDATE", own, foreign),  # taking it over
        ("UPDATE", foreign, own),  # handing ours to another driver
        ("DELETE", None, foreign),
    ):
        matched, allowed, message = _policy_verdict(policy, request(operation), obj, old)
        assert matched and not allowed and "gpu.example.com" in message, (operation, message)
        assert "driver snn.dra.dev" in message
    # Nor move a slice of another node onto its own.
    matched, allowed, message = _policy_verdict(policy, request("UPDATE"), own, other)
    assert not allowed and "may not take over" in message and "node-b" in message
    # Anyone else (an admin, another driver) is not matched and keeps what RBAC gives them.
    assert _policy_verdict(policy, request("CREATE", user="kubernetes-admin", node=None), other, None)[:2] == (
        False,
        True,
    )


def test_admission_policy_denies_with_its_message_where_fields_are_absent() -> None:
    """A CEL evaluation error also denies (failurePolicy Fail), but with a message that says nothing of the cause,
    and one in the match condition would deny every user's slice writes. The API server leaves out what is empty
    (userInfo.extra of a client certificate or of a token without node info), so each absent field must reach
    the policy's own message. ``_policy_verdict`` fails the test on any evaluation error."""
    policy = one(render(BASE), "ValidatingAdmissionPolicy")
    sa = one(render(BASE), "ServiceAccount")["metadata"]
    plugin = f"system:serviceaccount:{sa['namespace']}:{sa['name']}"
    own = {"spec": {"driver": DRIVER_NAME, "nodeName": "node-a"}}
    no_node_name = "carries no node name"
    for user_info in (
        {"username": plugin},
        {"username": plugin, "extra": {"authentication.kubernetes.io/node-name": []}},
    ):
        for operation, obj, old in (("CREATE", own, None), ("UPDATE", own, own), ("DELETE", None, own)):
            matched, allowed, message = _policy_verdict(
                policy, {"operation": operation, "userInfo": user_info}, obj, old
            )
            assert matched and not allowed and no_node_name in message, (user_info, operation, message)
    # A user without a name (none the API server authenticates, but the match condition must not fail on it).
    assert _policy_verdict(policy, {"operation": "CREATE", "userInfo": {}}, own, None) == (False, True, "")
    # Objects without spec (the API server validates a slice before admission; DELETE sees the stored one).
    on_node_a = {
        "operation": "",
        "userInfo": {"username": plugin, "extra": {"authentication.kubernetes.io/node-name": ["node-a"]}},
    }
    for operation, obj, old, expected in (
        ("CREATE", {}, None, "not slices without spec.nodeName"),
        ("UPDATE", own, {}, "may not take over a ResourceSlice of no node"),
        ("UPDATE", {}, own, "not slices without spec.nodeName"),
        ("DELETE", None, {}, "not slices without spec.nodeName"),
    ):
        matched, allowed, message = _policy_verdict(policy, {**on_node_a, "operation": operation}, obj, old)
        assert matched and not allowed and expected in message, (operation, message)


def test_namespace_admits_the_privileged_pod_security_level() -> None:
    namespace = one(render(BASE), "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


# ------------------------------------------------------------------------------------ kind and scripts
def test_kind_config_enables_the_dra_gates_and_cdi() -> None:
    config = yaml.safe_load((REPO / "hack/kind-config.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    gates = config["featureGates"]
    for gate in ("DRAPartitionableDevices", "DRAConsumableCapacity", "DRADeviceTaints"):
        assert gates.get(gate) is True, gate
    patches = [tomllib.loads(p) for p in config["containerdConfigPatches"]]
    assert any(p.get("plugins", {}).get("io.containerd.grpc.v1.cri", {}).get("enable_cdi") is True for p in patches)
    roles = [n["role"] for n in config["nodes"]]
    assert roles.count("control-plane") == 1 and "worker" in roles


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_executable_strict_bash(script: str) -> None:
    path = REPO / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_scripts_deploy_what_the_manifests_expect() -> None:
    demo = (REPO / "hack/kind-demo.sh").read_text()
    assert "kubectl apply -k deploy/overlays/kind" in demo and "kubectl apply -k deploy/demo" in demo
    build = (REPO / "hack/build-image.sh").read_text()
    kind_image = plugin_container(render(KIND))["image"]
    repo, tag = kind_image.rsplit(":", 1)
    assert f"IMAGE=${{IMAGE:-{repo}}}" in build and f"TAG=${{TAG:-{tag}}}" in build
    assert f"IMAGE={kind_image}" in demo
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert 'ENTRYPOINT ["snn-dra"]' in dockerfile


# ---------------------------------------------------------------------------------------------- e2e guard
def test_default_pytest_run_does_not_collect_the_e2e_suite() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert config["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]
    assert (REPO / "e2e/conftest.py").exists()


def test_e2e_suite_fails_with_instructions_when_no_cluster_answers(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "kind-gone", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "kind-gone",
            }
        )
    )
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "e2e"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "no Kubernetes API server is reachable" in output and "hack/kind-up.sh" in output
    assert "skipped" not in output


@pytest.mark.parametrize("module", sorted(p.stem for p in (REPO / "e2e").glob("*.py")))
def test_e2e_modules_import(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The e2e suite never runs in the default CI job, so at least prove every module imports cleanly."""
    monkeypatch.syspath_prepend(str(REPO))
    importlib.import_module(f"e2e.{module}")


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "$STUB_LOG"\n{body}\n')
    path.chmod(0o755)


def _run_script(
    tmp_path: Path, script: str, clusters: str = "", **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run a hack script with stub kind/kubectl/docker on PATH; returns the process and the stubs' call log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    log.touch()
    _stub(
        bin_dir,
        "kind",
        f'case "$1" in version) echo "kind v0.33.0 go1.25 linux/amd64";; get) printf "{clusters}";; esac',
    )
    _stub(bin_dir, "kubectl", "true")
    _stub(bin_dir, "docker", "true")
    full_env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "STUB_LOG": str(log)}
    for name in ("KIND_NODE_IMAGE", "KIND_CLUSTER_NAME", "KIND", "IMAGE", "TAG", "CONTAINER_TOOL"):
        full_env.pop(name, None)
    full_env.update(env)
    proc = subprocess.run(
        ["bash", str(REPO / script)], env=full_env, capture_output=True, text=True, timeout=60, check=False
    )
    return proc, log.read_text().splitlines()


def test_kind_up_creates_the_cluster_from_the_config_once(tmp_path: Path) -> None:
    proc, calls = _run_script(tmp_path, "hack/kind-up.sh")
    assert proc.returncode == 0, proc.stderr
    [create] = [c for c in calls if c.startswith("kind create cluster")]
    assert "--name snn-dra" in create and "--config hack/kind-config.yaml" in create
    assert re.search(r"--image kindest/node:v1\.37\.0@sha256:[0-9a-f]{64}", create), create
    assert "kubectl wait --for=condition=Ready node --all --timeout=180s" in calls

    again = tmp_path / "again"
    again.mkdir()
    proc, calls = _run_script(again, "hack/kind-up.sh", clusters="snn-dra\\n")
    assert proc.returncode == 0, proc.stderr
    assert not [c for c in calls if c.startswith("kind create")], "an existing cluster must be reused"


def test_kind_up_uses_the_requested_node_image(tmp_path: Path) -> None:
    image = "kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d"
    proc, calls = _run_script(tmp_path, "hack/kind-up.sh", KIND_NODE_IMAGE=image, KIND_CLUSTER_NAME="other")
    assert proc.returncode == 0, proc.stderr
    [create] = [c for c in calls if c.startswith("kind create cluster")]
    assert f"--image {image}" in create and "--name other" in create


def test_build_image_builds_the_image_the_kind_overlay_runs(tmp_path: Path) -> None:
    proc, calls = _run_script(tmp_path, "hack/build-image.sh")
    assert proc.returncode == 0, proc.stderr
    [build] = [c for c in calls if c.startswith("docker build")]
    assert build.endswith(f"-t {plugin_container(render(KIND))['image']} .")
    assert proc.stdout.strip().splitlines()[-1] == plugin_container(render(KIND))["image"]
