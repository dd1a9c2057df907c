"""Fuzz the embedded API server's request bodies: no 5xx, no request held up, memory back where it was.

Setup: the embedded API server runs in its own process (so its memory is its own). Two sender threads post
hypothesis-generated bodies (tests/hardening_fuzz_bodies.py: random JSON, structure-aware mutations of valid DRA
and core objects, as JSON, YAML with alias chains, merge patches and mangled bytes) through the official client;
every object a fuzzed request created is deleted again. A probe process meanwhile sends a small GET in a loop:
its slowest answer is how long any fuzzed request held up an ordinary one. Server RSS is read from /proc after a
warm-up (schemas, CEL environments and compile caches filled) and again at the end, each after 3 s without
requests.

Run: ``.venv/bin/python hack/bench/fuzz_apiserver.py [--inputs 10000] [--seed 1]``. Last line:
``fuzz-apiserver-bench: inputs=<n> status_5xx=<k> worst_holdup_ms=<h> p99_holdup_ms=<p> rss_before_mib=<a>
rss_after_mib=<b> rss_change_pct=<c>`` (one line).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))  # the shared strategies live with the unit suite's fuzz test

PROBE = """
import json, sys, threading, time
sys.path.insert(0, sys.argv[2])
from kubernetes import config
from hardening_support import send
api = config.new_client_from_config(config_file=sys.argv[1])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
latencies = []
print("probing", flush=True)
while not stop.is_set():
    t0 = time.perf_counter()
    assert send(api, "GET", "/api/v1/namespaces/default").status == 200
    latencies.append(time.perf_counter() - t0)
    stop.wait(0.02)
print(json.dumps(latencies), flush=True)
"""

SERVER = """
import sys, threading
from pathlib import Path
from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
srv = EmbeddedApiServer(state_dir=Path(sys.argv[1]), kubeconfig_path=Path(sys.argv[1]) / "kubeconfig").start()
print("ready", flush=True)
sys.stdin.read()
srv.stop()
"""


QUIET_S = 3.0
"""RSS is read after this long without requests (the server hands freed heap back every 2 s)."""


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Fuzzer:
    def __init__(self, kubeconfig: Path, seed: int) -> None:
        from kubernetes import config

        self.kubeconfig = kubeconfig
        self.seed = seed
        self.api = config.new_client_from_config(config_file=str(kubeconfig))
        self.statuses: collections.Counter[int] = collections.Counter()
        self.server_errors: list[str] = []
        self.sent = 0
        self.lock = threading.Lock()

    def run(self, count: int, thread: int) -> None:
        from hardening_fuzz_bodies import FuzzRequest, created_name, fuzz_requests
        from hardening_support import send
        from hypothesis import HealthCheck, Phase, given, seed, settings

        name = f"fuzz{thread}"

        @seed(self.seed * 100 + thread)
        @settings(max_examples=count, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(req=fuzz_requests(name))
        def one(req: FuzzRequest) -> None:
            try:
                reply = send(self.api, req.method, req.path, req.body, content_type=req.content_type, timeout=120)
            except Exception as e:  # a dropped connection counts as a server failure too
                with self.lock:
                    self.statuses[599] += 1
                    self.server_errors.append(f"{type(e).__name__}: {e} for {req.describe()}")
                    self.sent += 1
                return
            with self.lock:
                self.statuses[reply.status] += 1
                self.sent += 1
                if reply.status >= 500:
                    self.server_errors.append(f"{reply.status} {reply.body[:300]!r} for {req.describe()}")
            if reply.status == 201 and req.method == "POST" and (created := created_name(reply.body)):
                send(self.api, "DELETE", f"{req.path}/{created}")

        one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="fuzzed requests in total (two senders)")
    parser.add_argument("--warmup", type=int, default=1500,
                        help="fuzzed requests before the first RSS reading (fills the schema and CEL caches)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from hardening_fuzz_bodies import base_objects
    from hardening_support import send

    with tempfile.TemporaryDirectory(prefix="snn-fuzz-") as tmp:
        server = subprocess.Popen([sys.executable, "-c", SERVER, tmp], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, cwd=REPO)
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            fuzz = Fuzzer(Path(tmp) / "kubeconfig", args.seed)
            for thread in (0, 1):
                for path, obj in base_objects(f"fuzz{thread}"):
                    reply = send(fuzz.api, "POST", path, obj)
                    assert reply.status == 201, (path, reply.body)
            rss_start = rss_mib(server.pid)
            print(f"warm-up: {args.warmup} inputs...", file=sys.stderr, flush=True)
            fuzz.run(args.warmup, 9)
            time.sleep(QUIET_S)
            rss_before = rss_mib(server.pid)

            # The probe is a process of its own: in this one, the senders' hypothesis threads hold the GIL.
            prober = subprocess.Popen([sys.executable, "-c", PROBE, str(fuzz.kubeconfig), str(REPO / "tests")],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
            assert prober.stdout is not None and prober.stdout.readline().strip() == "probing"
            started = time.monotonic()
            senders = [threading.Thread(target=fuzz.run, args=(args.inputs // 2, t)) for t in (0, 1)]
            for s in senders:
                s.start()
            while any(s.is_alive() for s in senders):
                time.sleep(5)
                print(f"  {fuzz.sent}/{args.inputs + args.warmup} inputs, {len(fuzz.server_errors)} 5xx, "
                      f"server RSS {rss_mib(server.pid):.0f} MiB, {time.monotonic() - started:.0f} s",
                      file=sys.stderr, flush=True)
            assert prober.stdin is not None
            prober.stdin.close()
            holdups: list[float] = json.loads(prober.stdout.readline())
            prober.wait(timeout=30)
            time.sleep(QUIET_S)
            rss_after = rss_mib(server.pid)
        finally:
            if server.stdin is not None:
                server.stdin.close()
            server.wait(timeout=30)

    inputs = fuzz.sent - args.warmup
    fivexx = sum(n for code, n in fuzz.statuses.items() if code >= 500)
    worst = max(holdups) * 1000
    p99 = statistics.quantiles(holdups, n=100)[98] * 1000 if len(holdups) >= 100 else worst
    change = (rss_after - rss_before) / rss_before * 100
    print(f"{'status':>7}  {'count':>7}")
    for code, n in sorted(fuzz.statuses.items()):
        print(f"{code:>7}  {n:>7}")
    for err in fuzz.server_errors[:10]:
        print(f"5xx: {err}")
    print(f"probe GETs: {len(holdups)}, median {statistics.median(holdups) * 1000:.1f} ms, "
          f"p99 {p99:.1f} ms, worst {worst:.1f} ms")
    print(f"server RSS: start {rss_start:.1f} MiB, after warm-up {rss_before:.1f} MiB, after run {rss_after:.1f} MiB")
    print(f"fuzz-apiserver-bench: inputs={inputs} status_5xx={fivexx} worst_holdup_ms={worst:.0f} "
          f"p99_holdup_ms={p99:.0f} rss_before_mib={rss_before:.1f} rss_after_mib={rss_after:.1f} "
          f"rss_change_pct={change:+.1f}")
    os._exit(0 if fivexx == 0 else 1)  # hypothesis threads: exit without waiting on interpreter teardown


if __name__ == "__main__":
    main()
