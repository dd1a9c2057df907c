"""`snn-dra demo`: the whole driver on the embedded cluster, with the same manifests a kind cluster gets.

It starts the API server, scheduler and kubelet emulation, runs the real ``kubelet-plugin`` process for one
node, applies ``deploy/base/deviceclasses.yaml`` and every workload of ``deploy/demo/``, and shows what an
operator would check with kubectl: published slices, allocated claims, what each container gets through CDI,
and that everything is released when the pods go.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from kubernetes import config
from rich.console import Console
from rich.table import Table

from snn_dra.driver.cdi import resolve
from snn_dra.driver.cli.app import app
from snn_dra.driver.cli.console import output_console
from snn_dra.driver.cli.manifests import (
    DEVICE_CLASSES,
    apply_device_classes,
    default_deploy_dir,
    device_class_documents,
)
from snn_dra.driver.embedded.cluster import ClusterTimeoutError, EmbeddedCluster, PluginStartError, wait_until
from snn_dra.driver.kubejson import KubeJSON, resource_path

T = TypeVar("T")

NODE = "snn-node-0"
DEMO_TIMEOUT_S = 90.0
_PLURALS = {
    "Namespace": ("", "namespaces", False),
    "Pod": ("", "pods", True),
    "DeviceClass": ("resource.k8s.io", "deviceclasses", False),
    "ResourceClaimTemplate": ("resource.k8s.io", "resourceclaimtemplates", True),
    "ResourceClaim": ("resource.k8s.io", "resourceclaims", True),
}


class DemoError(Exception):
    """A step failed; the message says which and what was seen."""


def _path(kind: str, name: str | None = None, namespace: str | None = None) -> str:
    group, plural, namespaced = _PLURALS[kind]
    return resource_path(group, "v1", plural, name, namespace if namespaced else None)


def _demo_documents(deploy: Path) -> list[dict[str, Any]]:
    """The demo kustomization's resources, in its order (plain YAML: no kubectl needed)."""
    kustomization = yaml.safe_load((deploy / "demo" / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((deploy / "demo" / name).read_text()) if d]
    return docs


@contextmanager
def _step(console: Console, text: str) -> Iterator[None]:
    start = time.monotonic()
    with console.status(text):
        yield
    console.print(f"[green]✔[/] {text} [dim]({time.monotonic() - start:.1f} s)[/]")


def _slices_table(slices: list[dict[str, Any]]) -> Table:
    table = Table(title="ResourceSlices (kubectl get resourceslices)", title_justify="left")
    for col in ("NAME", "NODE", "DRIVER", "POOL", "DEVICES", "COUNTER SETS"):
        table.add_column(col)
    for s in sorted(slices, key=lambda s: s["metadata"]["name"]):
        spec = s["spec"]
        types = Counter(d.get("attributes", {}).get("type", {}).get("string", "?") for d in spec.get("devices") or [])
        table.add_row(
            s["metadata"]["name"],
            spec.get("nodeName", ""),
            spec["driver"],
            spec["pool"]["name"],
            ", ".join(f"{n} {t}" for t, n in sorted(types.items())) or "-",
            str(len(spec.get("sharedCounters") or []) or "-"),
        )
    return table


def _pod_state(pod: dict[str, Any]) -> str:
    status = pod.get("status", {})
    if status.get("phase") == "Running":
        return "Running"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return "Unschedulable"
    return ""


def run_demo(console: Console, node_config: Path, deploy: Path, profile: str, keep: bool) -> None:
    docs = _demo_documents(deploy)
    pods = [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "Pod"]
    with _step(console, f"embedded cluster up (Kubernetes {profile} profile, node {NODE})"):
        cluster = EmbeddedCluster(nodes=(NODE,), profile=profile).start()
    try:
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig_path))  # type: ignore[no-untyped-call]
        kube = KubeJSON(api)
        with _step(console, f"kubelet plugin running on {NODE} with {node_config.name}"):
            cluster.start_plugin(NODE, node_config)
            wait_until(
                lambda: cluster.kubelets[NODE].registered_plugins(),
                "the plugin to register with the kubelet",
                timeout=DEMO_TIMEOUT_S,
            )

        def pool() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = kube.get(_path_slices())["items"]
            mine = [s for s in items if s["spec"].get("nodeName") == NODE]
            if not mine:
                return None
            gen = max(s["spec"]["pool"]["generation"] for s in mine)
            current = [s for s in mine if s["spec"]["pool"]["generation"] == gen]
            return current if len(current) == current[0]["spec"]["pool"]["resourceSliceCount"] else None

        with _step(console, "ResourceSlices published"):
            slices = wait_until(pool, "the node's ResourceSlices", timeout=DEMO_TIMEOUT_S)
        console.print(_slices_table(slices))

        with _step(console, f"DeviceClasses and the demo workloads applied ({deploy / 'demo'})"):
            apply_device_classes(api, device_class_documents(deploy / DEVICE_CLASSES))
            for doc in docs:
                kube.create(_path(doc["kind"], namespace=doc["metadata"].get("namespace")), doc)

        def settled() -> dict[tuple[str, str], dict[str, Any]] | None:
            objs = {(ns, n): kube.get(_path("Pod", n, ns)) for ns, n in pods}
            return objs if all(_pod_state(p) for p in objs.values()) else None

        with _step(console, "pods scheduled, claims allocated and prepared"):
            states = wait_until(settled, "every demo pod to run or be reported unschedulable", timeout=DEMO_TIMEOUT_S)
        _show_pods(console, cluster, kube, states)

        if keep:
            _wait_while_kept(console, cluster.kubeconfig_path)

        with _step(console, "demo pods deleted; every claim unprepared and its CDI spec removed"):
            for ns, n in pods:
                kube.delete(_path("Pod", n, ns))
            cdi_dir = cluster.node_dirs(NODE).cdi_dir
            wait_until(lambda: not any(cdi_dir.glob("*.json")), "the CDI specs to be removed", timeout=DEMO_TIMEOUT_S)
            wait_until(
                lambda: not kube.get(_path_claims())["items"],
                "the generated claims to be deleted",
                timeout=DEMO_TIMEOUT_S,
            )
        api.close()
    finally:
        cluster.stop()
    running = sum(1 for p in states.values() if _pod_state(p) == "Running")
    console.print(
        f"\n[bold green]demo complete[/]: {len(slices)} slices published, {running}/{len(pods)} pods ran "
        "with their SNN devices, everything released"
    )
    if not keep:
        console.print(
            "\nTry next:\n"
            "  snn-dra demo --keep     the same, but the cluster and its pods stay up\n"
            "                          to explore with kubectl and snn-dra status\n"
            "  snn-dra cluster up --node-config deploy/node-configs/kapoho-point.yaml\n"
            "                          a cluster for your own workloads",
            highlight=False,
        )


def _wait_while_kept(console: Console, kubeconfig: Path) -> None:
    """``--keep``: say how to look around, then wait for Ctrl-C or SIGTERM (both lead to the normal cleanup)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        console.print(
            "\n[bold]The cluster stays up with the demo pods running.[/] Look around:\n"
            f"  kubectl --kubeconfig {kubeconfig} get pods,resourceclaims -n snn-demo\n"
            f"  snn-dra status --kubeconfig {kubeconfig}\n"
            "Press Ctrl-C to release everything and stop.",
            highlight=False,
            soft_wrap=True,
        )
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _path_slices() -> str:
    return resource_path("resource.k8s.io", "v1", "resourceslices")


def _path_claims() -> str:
    return resource_path("resource.k8s.io", "v1", "resourceclaims")


def _show_pods(
    console: Console, cluster: EmbeddedCluster, kube: KubeJSON, states: dict[tuple[str, str], dict[str, Any]]
) -> None:
    table = Table(title="Pods and their claims", title_justify="left")
    for col in ("POD", "STATE", "CLAIM", "REQUEST", "DEVICE", "SHARE"):
        table.add_column(col)
    kubelet = cluster.kubelets[NODE]
    env_shown = False
    for (ns, name), pod in states.items():
        state = _pod_state(pod)
        statuses = pod.get("status", {}).get("resourceClaimStatuses") or []
        if not statuses or state != "Running":
            message = next(
                (c.get("message", "") for c in pod.get("status", {}).get("conditions") or [] if c.get("message")), ""
            )
            table.add_row(name, f"[yellow]{state}[/]", "-", "-", message[:60], "")
            continue
        for st in statuses:
            claim = kube.get(_path("ResourceClaim", st["resourceClaimName"], ns))
            for r in claim["status"]["allocation"]["devices"]["results"]:
                table.add_row(name, "[green]Running[/]", claim["metadata"]["name"], r["request"], r["device"],
                              (r.get("shareID") or "")[:8])  # fmt: skip
    console.print(table)
    for (ns, name), pod in states.items():
        if env_shown or _pod_state(pod) != "Running":
            continue
        container = pod["spec"]["containers"][0]["name"]
        ids = kubelet.cdi_devices_for(ns, name, container)
        edits = resolve(ids, [cluster.node_dirs(NODE).cdi_dir])
        console.print(
            f"\n[bold]{ns}/{name}[/] container [bold]{container}[/] gets through CDI ({len(ids)} device IDs):"
        )
        for line in sorted(edits["env"]):
            console.print(f"  {line}")
        for node in edits["deviceNodes"]:
            console.print(f"  device node {node['path']}")
        env_shown = True


@app.command("demo")
def demo(
    node_config: Annotated[
        Path | None, typer.Option(help="Node config of the demo node (default: deploy/node-configs/kapoho-point.yaml).")
    ] = None,
    deploy_dir: Annotated[Path | None, typer.Option(help="The repository's deploy/ directory.")] = None,
    profile: Annotated[str, typer.Option(help="Kubernetes version the embedded cluster emulates.")] = "1.37",
    keep: Annotated[
        bool, typer.Option(help="Keep the cluster and the demo pods up after they run, until Ctrl-C or SIGTERM.")
    ] = False,
) -> None:
    """Run the driver end to end on the embedded cluster with the demo workloads of deploy/demo."""
    console = output_console()
    deploy = deploy_dir or default_deploy_dir()
    if not (deploy / "demo" / "kustomization.yaml").is_file():
        console.print(f"[red]error:[/] {deploy} has no demo/kustomization.yaml; run from the repository or pass "
                      "--deploy-dir")  # fmt: skip
        raise typer.Exit(2)
    node_config = node_config or deploy / "node-configs" / "kapoho-point.yaml"
    try:
        run_demo(console, node_config.absolute(), deploy, profile, keep)
    except (DemoError, PluginStartError, ClusterTimeoutError) as exc:
        console.print(f"[red]demo failed:[/] {exc}")
        raise typer.Exit(1) from None
