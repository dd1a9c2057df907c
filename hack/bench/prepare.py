"""NodePrepareResources latency over the plugin's unix socket, beside a floor measured in the same run.

Setup: the embedded API server (HTTPS, this process) holds allocated claims; a separate plugin process serves
the real gRPC service with the real Preparer, reading claims with the official client. Each sample is one
NodePrepareResources call (fresh claims are prepared, then unprepared outside the timed region).

Cases: 1 claim x 1 device, 1 claim x 32 devices, 32 claims x 1 device in one call.
Floor: median empty gRPC round trip + median claim GET (official client, raw JSON) + median fsync'd
atomic small-file write in the CDI dir: the unavoidable work of one single-device prepare.

Run: ``/tmp/v/bin/python hack/bench/prepare.py [--samples 60]``. Last line:
``prepare-bench: floor_ms=<f> p50_ms=<a> p99_ms=<b> p50_32dev_ms=<c> batch32_ms=<d> rss_mib=<r>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DRIVER = "snn.dra.dev"
NODE = "bench-node"
CHIPS = 2
CORES_PER_CHIP = 32


def build_model() -> Any:
    """Two 8x4-core chips published as neuronCores: 64 independent devices (same in both processes)."""
    from snn_dra.api.attributes import DeviceType, Family
    from snn_dra.api.nodeconfig import PublishConfig
    from snn_dra.driver.backends.base import Access, Board, Chip, Core, DeviceNode, EventQueue, Inventory, Router
    from snn_dra.driver.model import build_model as model_of

    chips = []
    for i in range(CHIPS):
        cores = tuple(Core(k, k % 8, k // 8, 8192, 131072, 1000) for k in range(CORES_PER_CHIP))
        chips.append(
            Chip(
                index=i, id=f"bc{i}", serial=f"S{i}", family=Family.AKIDA, model="akd1000", board_id="b0",
                system_id="sys", mesh=(i, 0, 0), core_mesh=(8, 4), nominal_cores=CORES_PER_CHIP, cores=cores,
                natural_group=(2, 2), router=Router(400, 8, 4), event_queues=(EventQueue(0, 1024, 25),),
                hops_to_host=0, firmware_version="1.0.0",
                access=Access(device_nodes=(DeviceNode(f"/dev/akida{i}", f"/dev/akida{i}", 240, i),)),
            )
        )  # fmt: skip
    inv = Inventory(NODE, "sys", (Board("b0", "akd1000-pcie", Family.AKIDA, tuple(chips)),))
    return model_of(inv, PublishConfig(levels=[DeviceType.NEURON_CORE]))


# ---------------------------------------------------------------------------------------------- plugin process
def serve(kubeconfig: str, work: str) -> None:
    from kubernetes import config

    from snn_dra.driver.claims import KubeClaimSource
    from snn_dra.driver.plugin.server import PluginConfig, PluginServer
    from snn_dra.driver.prepare import Preparer

    model = build_model()
    api = config.new_client_from_config(config_file=kubeconfig)
    w = Path(work)
    preparer = Preparer(
        driver_name=DRIVER, node_name=NODE, devices=model.by_name, cdi_dir=w / "cdi", state_dir=w / "state",
        claims=KubeClaimSource(api),
    )  # fmt: skip
    server = PluginServer(PluginConfig(plugin_dir=w / "p", registry_dir=w / "r", stop_grace_seconds=2), preparer)
    asyncio.run(server.run_until_signal())


# ---------------------------------------------------------------------------------------------- driver side
def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", nargs=2, metavar=("KUBECONFIG", "WORKDIR"))
    ap.add_argument("--samples", type=int, default=60)
    args = ap.parse_args()
    if args.serve:
        serve(*args.serve)
        return

    import grpc
    from kubernetes import client, config

    from snn_dra.api.kubelet.dra.v1 import api_pb2, api_pb2_grpc
    from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
    from snn_dra.driver.embedded.cluster import stop_process
    from snn_dra.driver.fsutil import atomic_write

    work = Path(tempfile.mkdtemp(prefix="snn-pb-", dir="/tmp"))
    server = EmbeddedApiServer(profile="1.37", state_dir=work / "apiserver").start()
    proc: subprocess.Popen[str] | None = None
    try:
        api = config.new_client_from_config(config_file=str(server.kubeconfig_path))
        res = client.ResourceV1Api(api)
        devices = [d.name for d in build_model().devices]
        counter = iter(range(10**9))

        def make_claim(devs: list[str]) -> api_pb2.Claim:
            name = f"c{next(counter)}"
            body = {
                "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"devices": {"requests": [{"name": "npu", "exactly": {"deviceClassName": "snn",
                                                                              "count": len(devs)}}]}},
            }  # fmt: skip
            obj = json.loads(res.create_namespaced_resource_claim("default", body, _preload_content=False).data)
            results = [{"request": "npu", "driver": DRIVER, "pool": NODE, "device": d} for d in devs]
            params = {"apiVersion": "snn.dra.dev/v1alpha1", "kind": "SNNConfig", "neuronModel": "CUBA-LIF"}
            config = [{"source": "FromClaim", "opaque": {"driver": DRIVER, "parameters": params}}]
            obj["status"] = {"allocation": {"devices": {"results": results, "config": config}}}
            res.replace_namespaced_resource_claim_status(name, "default", obj, _preload_content=False)
            return api_pb2.Claim(namespace="default", uid=obj["metadata"]["uid"], name=name)

        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(server.kubeconfig_path), str(work)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready: "):
            raise SystemExit(f"plugin process did not start (exit {proc.wait()})")
        dra = dict(p.split("=", 1) for p in line.removeprefix("ready: ").split())["dra"]
        stub = api_pb2_grpc.DRAPluginStub(grpc.insecure_channel(f"unix://{dra}"))

        def timed(fn: Callable[[], Any]) -> float:
            t = time.perf_counter()
            fn()
            return (time.perf_counter() - t) * 1000

        def case(n_claims: int, n_devices: int, samples: int) -> list[float]:
            out = []
            for _ in range(samples):
                claims = [make_claim(devices[i * n_devices : (i + 1) * n_devices]) for i in range(n_claims)]
                req = api_pb2.NodePrepareResourcesRequest(claims=claims)
                t = time.perf_counter()
                resp = stub.NodePrepareResources(req, timeout=45)
                out.append((time.perf_counter() - t) * 1000)
                bad = [c.error for c in resp.claims.values() if c.error]
                if bad or len(resp.claims) != n_claims:
                    raise SystemExit(f"prepare failed: {bad[:1]}")
                stub.NodeUnprepareResources(api_pb2.NodeUnprepareResourcesRequest(claims=claims), timeout=45)
                for c in claims:
                    res.delete_namespaced_resource_claim(c.name, "default")
            return out

        n = args.samples
        case(1, 1, 5)  # warm-up: imports, connections, first checkpoint
        empty = [timed(lambda: stub.NodePrepareResources(api_pb2.NodePrepareResourcesRequest(), timeout=45))
                 for _ in range(n)]  # fmt: skip
        probe = make_claim(devices[:1])
        gets = [timed(lambda: res.read_namespaced_resource_claim(probe.name, "default", _preload_content=False).data)
                for _ in range(n)]  # fmt: skip
        blob = json.dumps({"k": "v" * 600}).encode()
        (work / "cdi").mkdir(exist_ok=True)
        writes = [timed(lambda: atomic_write(work / "cdi" / "floor.probe", blob, 0o644)) for _ in range(n)]
        (work / "cdi" / "floor.probe").unlink()
        res.delete_namespaced_resource_claim(probe.name, "default")
        floor = statistics.median(empty) + statistics.median(gets) + statistics.median(writes)

        single = case(1, 1, n)
        dev32 = case(1, 32, max(10, n // 3))
        batch32 = case(32, 1, max(5, n // 6))
        rss_kib = 0
        for row in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                rss_kib = int(row.split()[1])
        print(f"floor parts (median ms): empty_rpc={statistics.median(empty):.2f} "
              f"claim_get={statistics.median(gets):.2f} fsync_write={statistics.median(writes):.2f}")  # fmt: skip
        for label, xs in (
            ("1 claim x 1 device", single),
            ("1 claim x 32 devices", dev32),
            ("32 claims x 1 device", batch32),
        ):
            print(f"{label:<21}({len(xs)} samples): p50={_pct(xs, 0.5):.2f} p99={_pct(xs, 0.99):.2f} ms")
        print(
            f"prepare-bench: floor_ms={floor:.2f} p50_ms={_pct(single, 0.5):.2f} p99_ms={_pct(single, 0.99):.2f} "
            f"p50_32dev_ms={_pct(dev32, 0.5):.2f} batch32_ms={_pct(batch32, 0.5):.2f} rss_mib={rss_kib / 1024:.1f}"
        )
    finally:
        if proc is not None:
            stop_process(proc)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
