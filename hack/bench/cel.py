"""Throughput of DRA selector evaluation through snn_dra.driver.cel (prints evals/s; no thresholds).

Usage: python hack/bench/cel.py [N]
S1 = simple attribute selector, S2 = quantity + semver selector, S3 = Kubernetes library functions (sets, lists,
regex, ip/cidr, url). S2 and S3 call Python callbacks, which leak in cel-expr-python 0.1.3. "raw" evaluates
every time; "memo" is what the allocator sees on repeated passes.
"""

from __future__ import annotations

import resource
import sys
import time

from snn_dra.driver.cel import compile_selector, device_view

SELECTORS = {
    "S1 simple": 'device.driver == "snn.dra.dev" && device.attributes["snn.dra.dev"].type == "core"',
    "S2 quantity+semver": 'device.capacity["snn.dra.dev"].memory.compareTo(quantity("1Gi")) >= 0 && '
    'device.attributes["snn.dra.dev"].firmware.isGreaterThan(semver("1.0.0"))',
    "S3 k8s libraries": 'sets.contains(device.attributes["snn.dra.dev"].labels, ["fast"]) && '
    'device.attributes["snn.dra.dev"].lanes.max() <= 8 && device.attributes["snn.dra.dev"].type.find("^c") == "c" && '
    'cidr("10.0.0.0/8").containsIP(device.attributes["snn.dra.dev"].ip) && '
    'url(device.attributes["snn.dra.dev"].endpoint).getPort() == "8443"',
}


def _devices(n: int) -> list:  # type: ignore[type-arg]
    return [
        device_view(
            "snn.dra.dev",
            {
                "name": f"core-{i}",
                "attributes": {
                    "type": {"string": "core"},
                    "index": {"int": i},
                    "firmware": {"version": "1.4.0"},
                    "labels": {"strings": ["fast", "loihi2"]},
                    "lanes": {"ints": [2, 4, 8]},
                    "ip": {"string": f"10.0.{i // 256}.{i % 256}"},
                    "endpoint": {"string": f"https://chip-{i}.snn.example.com:8443/v1"},
                },
                "capacity": {"memory": {"value": "2Gi"}},
            },
        )
        for i in range(n)
    ]


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    devices = _devices(1024)
    for label, expression in SELECTORS.items():
        sel = compile_selector(expression)
        rss0 = _rss_mib()
        t0 = time.perf_counter()
        for i in range(n):
            sel.evaluate(devices[i % len(devices)])
        raw = n / (time.perf_counter() - t0)
        grown = _rss_mib() - rss0
        t0 = time.perf_counter()
        for i in range(n):
            sel.matches(devices[i % len(devices)])
        memo = n / (time.perf_counter() - t0)
        print(f"{label:22} raw {raw:>10,.0f} evals/s   memo {memo:>10,.0f} evals/s   raw RSS growth {grown:6.1f} MiB")
    t0 = time.perf_counter()
    for i in range(200):
        compile_selector(f'device.attributes["snn.dra.dev"].index == {i}')
    print(f"{'compile (uncached)':22} {(time.perf_counter() - t0) / 200 * 1e3:.2f} ms each")


if __name__ == "__main__":
    main()
