"""Write throughput of the embedded API server with many claims stored, its controllers running.

Setup: an embedded cluster (HTTPS API server, scheduler + claim controller, one kubelet emulation; no plugin) with
N ResourceClaims already stored (created in-process, then the cluster is given time to settle). Each sample is one
write through the official client over HTTPS, alternating create and delete of a claim, one at a time, so every
write wakes the scheduler, the claim controller and the kubelet's claim watch as a real write does. Throughput
should not fall with N: nothing a write or the controllers do per write may walk the whole store.

Run: ``.venv/bin/python hack/bench/apiserver.py [--writes 300] [--sizes 10,1000,5000]``. Last line:
``apiserver-bench: writes_per_s_10=<x> writes_per_s_1000=<y> writes_per_s_5000=<z>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

NAMESPACE = "default"


def claim(name: str) -> dict[str, Any]:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"devices": {"requests": [{"name": "npu", "exactly": {"deviceClassName": "snn.dra.dev"}}]}}}


def measure(stored: int, writes: int) -> float:
    from kubernetes import client, config

    from snn_dra.driver.embedded.cluster import EmbeddedCluster, wait_until

    with EmbeddedCluster(nodes=("bench-node",)) as cluster:
        store = cluster.store
        started = time.monotonic()
        for i in range(stored):
            store.create("resourceclaims", claim(f"stored-{i:05d}"))
            if (i + 1) % 1000 == 0:
                print(f"  {i + 1}/{stored} claims stored ({time.monotonic() - started:.1f} s)", file=sys.stderr,
                      flush=True)
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig_path))
        try:
            res = client.ResourceV1Api(api)
            # Settle: the scheduler has seen everything once the claim list answers with the newest version.
            rv = store.resource_version
            wait_until(lambda: int(json.loads(res.list_namespaced_resource_claim(
                NAMESPACE, limit=1, _preload_content=False).data)["metadata"]["resourceVersion"]) >= int(rv),
                "the cluster to settle")
            for i in range(10):  # warm-up: connections, validator caches
                res.create_namespaced_resource_claim(NAMESPACE, claim(f"warm-{i}"))
                res.delete_namespaced_resource_claim(f"warm-{i}", NAMESPACE)
            t0 = time.perf_counter()
            for i in range(writes // 2):
                res.create_namespaced_resource_claim(NAMESPACE, claim(f"bench-{i:05d}"))
                res.delete_namespaced_resource_claim(f"bench-{i:05d}", NAMESPACE)
            elapsed = time.perf_counter() - t0
        finally:
            api.close()
    return (writes // 2 * 2) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300, help="writes per size (half creates, half deletes)")
    parser.add_argument("--sizes", default="10,1000,5000", help="stored claims before measuring, comma separated")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, float] = {}
    print(f"{'stored claims':>14}  {'writes':>7}  {'writes/s':>9}  {'ms/write':>9}")
    for n in sizes:
        print(f"measuring with {n} stored claims...", file=sys.stderr, flush=True)
        results[n] = measure(n, args.writes)
        print(f"{n:>14}  {args.writes:>7}  {results[n]:>9.1f}  {1000 / results[n]:>9.2f}", flush=True)
    print("apiserver-bench: " + " ".join(f"writes_per_s_{n}={results[n]:.1f}" for n in sizes))


if __name__ == "__main__":
    main()
