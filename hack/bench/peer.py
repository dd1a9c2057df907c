"""snn-dra's kubelet plugin measured beside a peer DRA kubelet plugin (e.g. the upstream Go example driver).

Why side by side: the machine is shared and noisy, so a figure only means something next to a reference
measured in the same run under the same noise. One embedded API server (snn-dra's own, HTTPS on loopback, in
this process) serves both plugins, each on its own Node with its own kubelet-shaped directories and CDI dir.
This process is the kubelet of both nodes (no scheduler runs: it would release claims no pod reserves) and talks
to both plugins with one kubelet client over their unix sockets: registration GetInfo, then
NodePrepareResources / NodeUnprepareResources for N one-device claims each, interleaved call by call (the
order alternates every round) so that noise hits both alike. The claims are real ResourceClaims in the API
server, created and then allocated through the official client as the scheduler writes it (status subresource:
results naming each driver's own devices, read from the slices it published, and a node selector);
``--peer-devices`` names the peer's devices when it cannot publish.

Figures per driver: prepare p50/p99, unprepare p50/p99, CPU per prepare+unprepare (utime+stime of the plugin
process from ``/proc/<pid>/stat`` over the measured rounds), RSS after warm-up, process start to a registration
socket that answers GetInfo, process start to its own pool complete in the API server, and an empty
NodePrepareResources call (the gRPC floor).

Run (hack/bench/README.md says how to build the example driver, and which ``--peer-env``/``--peer-devices``
workarounds an embedded server without watch-list or protobuf bodies needs):
``.venv/bin/python hack/bench/peer.py --peer-bin /tmp/snn-peer/dra-example-kubeletplugin``. Last line:
``peer-bench: prepare_p50_ratio=<r> prepare_p99_ratio=<r> unprepare_p50_ratio=<r> rss_ratio=<r> start_s=<s>
peer_start_s=<s>`` (ratios are snn-dra / peer).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent.parent
SNN_NODE = "snn-bench"
PEER_NODE = "peer-bench"
NAMESPACE = "default"
DEFAULT_PEER_ARGS = (
    "--node-name={node} --kubeconfig={kubeconfig} --cdi-root={cdi_dir} "
    "--kubelet-registrar-directory-path={registry_dir} --kubelet-plugins-directory-path={plugins_dir} "
    "--kube-api-qps=1000 --kube-api-burst=1000"
)
"""The example driver's flags for running outside a pod; the placeholders are filled per node. Its client-go rate
limiter (5 QPS, burst 10 by default) would hold every prepare's claim GET to about 200 ms once the burst is spent,
measuring the limiter instead of the plugin; snn-dra's client has no limiter, so the peer's is lifted."""
PLACEHOLDERS = ("node", "kubeconfig", "cdi_dir", "registry_dir", "plugins_dir", "kubelet_root", "work_dir")
SCRUBBED_ENV = ("NODE_NAME", "POD_UID", "KUBECONFIG", "CDI_ROOT", "NAMESPACE")
"""Variables a plugin may read as flag defaults; the harness passes everything explicitly instead."""


# ------------------------------------------------------------------------------------------------ pure parts
def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the sample itself, no interpolation), as the other benches report it."""
    if not xs:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"percentile q={q} must be within [0, 1]")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """ours / theirs, or None when either side is missing or the reference is not positive."""
    if ours is None or theirs is None or theirs <= 0:
        return None
    return ours / theirs


def fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}"


def cpu_ticks(stat: str) -> int:
    """utime + stime (clock ticks, all threads) from a ``/proc/<pid>/stat`` line.

    The command name (field 2) may hold spaces and parentheses, so fields are counted after its last ``)``.
    """
    end = stat.rfind(")")
    if end < 0:
        raise ValueError("not a /proc/<pid>/stat line: no ')' closing the command name")
    rest = stat[end + 1 :].split()
    if len(rest) < 13:
        raise ValueError(f"/proc/<pid>/stat line has {len(rest) + 2} fields, expected at least 15")
    return int(rest[11]) + int(rest[12])  # fields 14 (utime) and 15 (stime); rest[0] is field 3


def rss_kib(status: str) -> int:
    """VmRSS in KiB from ``/proc/<pid>/status``."""
    for row in status.splitlines():
        if row.startswith("VmRSS:"):
            parts = row.split()
            if len(parts) < 2 or parts[-1] != "kB":
                raise ValueError(f"unexpected VmRSS row {row!r}")
            return int(parts[1])
    raise ValueError("no VmRSS row in /proc/<pid>/status (the process may have exited)")


def loadavg(text: str) -> float:
    """The 1-minute load average from ``/proc/loadavg``: printed so a reader can judge how noisy the run was."""
    try:
        return float(text.split()[0])
    except (IndexError, ValueError):
        raise ValueError(f"not a /proc/loadavg line: {text[:80]!r}") from None


def expand_args(template: str, values: Mapping[str, str]) -> list[str]:
    """Split a shell-quoted flag template and fill ``{placeholder}`` fields; unknown ones fail clearly."""
    out = []
    for word in shlex.split(template):
        try:
            out.append(word.format_map(values))
        except KeyError as exc:
            raise ValueError(
                f"--peer-args: unknown placeholder {{{exc.args[0]}}} in {word!r}; known: "
                + ", ".join("{" + p + "}" for p in sorted(values))
            ) from None
    return out


def parse_env(pairs: Iterable[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--peer-env {pair!r}: expected NAME=VALUE")
        out[key] = value
    return out


def _attr(device: Mapping[str, Any], driver: str, name: str) -> Any:
    attrs = device.get("attributes") or {}
    value = attrs.get(name) or attrs.get(f"{driver}/{name}") or {}
    return next(iter(value.values()), None) if isinstance(value, Mapping) else None


def pool_state(slices: Iterable[Mapping[str, Any]], driver: str, node: str) -> tuple[str, list[dict[str, Any]]] | None:
    """The driver's pool on the node once complete (all ``resourceSliceCount`` slices of its newest generation).

    Returns (pool name, devices in slice order), or None while nothing or only part of the pool is published.
    """
    pools: dict[str, list[Mapping[str, Any]]] = {}
    for s in slices:
        spec = s.get("spec") or {}
        if spec.get("driver") == driver and spec.get("nodeName") == node:
            pools.setdefault((spec.get("pool") or {}).get("name", ""), []).append(s)
    for name, members in sorted(pools.items()):
        newest = max(int(m["spec"]["pool"].get("generation", 0)) for m in members)
        current = [m for m in members if int(m["spec"]["pool"].get("generation", 0)) == newest]
        want = int(current[0]["spec"]["pool"].get("resourceSliceCount", 1))
        if len(current) == want:
            current.sort(key=lambda m: str(m["metadata"]["name"]))
            return name, [dict(d) for m in current for d in (m["spec"].get("devices") or [])]
    return None


def pick_devices(devices: Sequence[Mapping[str, Any]], driver: str, device_type: str | None) -> list[str]:
    """Device names to allocate round-robin; ``device_type`` filters on the driver's ``type`` attribute."""
    names = [str(d["name"]) for d in devices if device_type is None or _attr(d, driver, "type") == device_type]
    if not names:
        kinds = sorted({str(_attr(d, driver, "type")) for d in devices})
        raise ValueError(f"driver {driver} published no device of type {device_type!r} (types seen: {kinds})")
    return names


def last_error(log: str, limit: int = 300) -> str:
    """The last log line that reports an error (klog ``E`` lines, ``err=``, ``ERROR``), cut to ``limit`` chars."""
    for row in reversed(log.splitlines()):
        if (row.startswith("E") and row[1:5].isdigit()) or " err=" in row or "ERROR" in row:
            return row if len(row) <= limit else row[: limit - 3] + "..."
    return ""


@dataclass
class Figures:
    """One driver's results; None where a figure could not be measured (the table says why)."""

    label: str
    prepare_ms: list[float] = field(default_factory=list)
    unprepare_ms: list[float] = field(default_factory=list)
    empty_ms: list[float] = field(default_factory=list)
    cpu_ms_per_cycle: float | None = None
    rss_mib: float | None = None
    start_to_socket_s: float | None = None
    start_to_slices_s: float | None = None
    slices_note: str = ""


def _p(xs: Sequence[float], q: float) -> float | None:
    return percentile(xs, q) if xs else None


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f} ms"


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f} s"


def _mib(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f} MiB"


def table_rows(ours: Figures, peer: Figures) -> list[tuple[str, str, str, str]]:
    """(measure, peer, snn-dra, ratio snn-dra/peer) rows, in the order of the issue's table."""
    rows: list[tuple[str, float | None, float | None, Callable[[float | None], str]]] = [
        ("NodePrepareResources p50", _p(peer.prepare_ms, 0.5), _p(ours.prepare_ms, 0.5), _ms),
        ("NodePrepareResources p99", _p(peer.prepare_ms, 0.99), _p(ours.prepare_ms, 0.99), _ms),
        ("NodeUnprepareResources p50", _p(peer.unprepare_ms, 0.5), _p(ours.unprepare_ms, 0.5), _ms),
        ("NodeUnprepareResources p99", _p(peer.unprepare_ms, 0.99), _p(ours.unprepare_ms, 0.99), _ms),
        ("CPU per prepare+unprepare", peer.cpu_ms_per_cycle, ours.cpu_ms_per_cycle, _ms),
        ("RSS after warm-up", peer.rss_mib, ours.rss_mib, _mib),
        ("process start to registration socket", peer.start_to_socket_s, ours.start_to_socket_s, _s),
        ("process start to own slices published", peer.start_to_slices_s, ours.start_to_slices_s, _s),
        ("empty NodePrepareResources call", _p(peer.empty_ms, 0.5), _p(ours.empty_ms, 0.5), _ms),
    ]
    out = []
    for name, theirs, mine, fmt in rows:
        r = ratio(mine, theirs)
        out.append((name, fmt(theirs), fmt(mine), "n/a" if r is None else f"{r:.2f}x"))
    return out


def render_table(ours: Figures, peer: Figures) -> str:
    header = ("measure", peer.label, ours.label, "ratio (snn-dra / peer)")
    rows = [header, *table_rows(ours, peer)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, r in enumerate(rows):
        lines.append(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}")
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"{f.label}: {f.slices_note}" for f in (peer, ours) if f.slices_note]
    return "\n".join(lines + notes)


def summary_line(ours: Figures, peer: Figures) -> str:
    r50 = ratio(_p(ours.prepare_ms, 0.5), _p(peer.prepare_ms, 0.5))
    r99 = ratio(_p(ours.prepare_ms, 0.99), _p(peer.prepare_ms, 0.99))
    u50 = ratio(_p(ours.unprepare_ms, 0.5), _p(peer.unprepare_ms, 0.5))
    rss = ratio(ours.rss_mib, peer.rss_mib)
    start = "n/a" if ours.start_to_socket_s is None else f"{ours.start_to_socket_s:.3f}"
    peer_start = "n/a" if peer.start_to_socket_s is None else f"{peer.start_to_socket_s:.3f}"
    return (
        f"peer-bench: prepare_p50_ratio={fmt_ratio(r50)} prepare_p99_ratio={fmt_ratio(r99)} "
        f"unprepare_p50_ratio={fmt_ratio(u50)} rss_ratio={fmt_ratio(rss)} start_s={start} peer_start_s={peer_start}"
    )


# ------------------------------------------------------------------------------------------------ the harness
def progress(msg: str) -> None:
    print(f"[peer-bench] {msg}", file=sys.stderr, flush=True)


class KubeletClient:
    """The kubelet's side of one plugin: GetInfo on its registration socket, then the DRA service it chose."""

    def __init__(self, registration_socket: str, kubelet_root: Path) -> None:
        import grpc

        from snn_dra.api.kubelet.dra.v1 import api_pb2 as v1
        from snn_dra.api.kubelet.dra.v1 import api_pb2_grpc as v1_grpc
        from snn_dra.api.kubelet.dra.v1beta1 import api_pb2 as v1beta1
        from snn_dra.api.kubelet.dra.v1beta1 import api_pb2_grpc as v1beta1_grpc
        from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2 as reg
        from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2_grpc as reg_grpc
        from snn_dra.driver.embedded.kubelet import GET_INFO_TIMEOUT, validate_plugin_info

        with grpc.insecure_channel(f"unix://{registration_socket}") as ch:
            info = reg_grpc.RegistrationStub(ch).GetInfo(reg.InfoRequest(), timeout=GET_INFO_TIMEOUT)
        service, _health = validate_plugin_info(info, kubelet_root)
        self.driver: str = info.name
        self.endpoint: str = info.endpoint
        self.service = service
        self._pb: Any = v1 if service == "v1.DRAPlugin" else v1beta1
        self._channel = grpc.insecure_channel(f"unix://{info.endpoint}")
        self._stub: Any = (v1_grpc if service == "v1.DRAPlugin" else v1beta1_grpc).DRAPluginStub(self._channel)

    def prepare(self, claims: Sequence[tuple[str, str]]) -> Any:
        req = self._pb.NodePrepareResourcesRequest(
            claims=[self._pb.Claim(namespace=NAMESPACE, name=n, uid=u) for n, u in claims]
        )
        return self._stub.NodePrepareResources(req, timeout=45)

    def unprepare(self, claims: Sequence[tuple[str, str]]) -> Any:
        req = self._pb.NodeUnprepareResourcesRequest(
            claims=[self._pb.Claim(namespace=NAMESPACE, name=n, uid=u) for n, u in claims]
        )
        return self._stub.NodeUnprepareResources(req, timeout=45)

    def close(self) -> None:
        self._channel.close()


@dataclass
class Plugin:
    """One plugin process on its node, with what the harness learned about it."""

    label: str
    node: str
    registry_dir: Path
    kubelet_root: Path
    proc: subprocess.Popen[bytes]
    started: float
    log_path: Path
    log: IO[bytes]
    figures: Figures
    client: KubeletClient | None = None
    pool: str = ""
    devices: list[str] = field(default_factory=list)
    claims: list[tuple[str, str]] = field(default_factory=list)
    allocated: dict[str, str] = field(default_factory=dict)
    """Claim UID -> the device its allocation names (a prepare must return exactly that device)."""

    def ticks(self) -> int:
        return cpu_ticks(Path(f"/proc/{self.proc.pid}/stat").read_text())

    def rss_mib(self) -> float:
        return rss_kib(Path(f"/proc/{self.proc.pid}/status").read_text()) / 1024

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise SystemExit(f"{self.label} exited with status {self.proc.returncode}; its log: {self.log_path}")

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def launch(label: str, node: str, cmd: list[str], env: Mapping[str, str], dirs: Any, work: Path) -> Plugin:
    log_path = work / f"{node}.log"
    log = log_path.open("wb")
    full_env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    full_env.update(env)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    return Plugin(label, node, dirs.registry_dir, dirs.kubelet_root, proc, started, log_path, log, Figures(label))


def wait_registered(p: Plugin, timeout: float) -> None:
    """Poll the node's registry dir for a ``*-reg.sock`` that answers GetInfo; time it from process start."""
    import grpc

    deadline = p.started + timeout
    while True:
        p.alive()
        for sock in sorted(p.registry_dir.glob("*-reg.sock")):
            try:
                p.client = KubeletClient(str(sock), p.kubelet_root)
            except grpc.RpcError:
                continue  # the file exists before the server answers on it
            except ValueError as exc:  # RegistrationRejectedError: GetInfo answered something a kubelet refuses
                raise SystemExit(f"{p.label}: a kubelet would refuse its registration via {sock}: {exc}") from None
            p.figures.start_to_socket_s = time.monotonic() - p.started
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{p.label} did not serve a registration socket in {p.registry_dir} within "
                             f"{timeout:.0f} s; its log: {p.log_path}")  # fmt: skip
        time.sleep(0.002)


def wait_published(p: Plugin, store: Any, timeout: float) -> tuple[str, list[dict[str, Any]]] | None:
    """Poll the API server's store until the plugin's pool on its node is complete; time it from process start."""
    assert p.client is not None
    deadline = p.started + timeout
    while time.monotonic() < deadline:
        p.alive()
        state = pool_state(store.list("resourceslices"), p.client.driver, p.node)
        if state is not None:
            p.figures.start_to_slices_s = time.monotonic() - p.started
            return state
        time.sleep(0.01)
    p.figures.slices_note = (
        f"no complete pool of driver {p.client.driver} on node {p.node} within {timeout:.0f} s of start; "
        f"last error in its log: {last_error(p.log_path.read_text(errors='replace')) or 'none'}"
    )
    return None


def create_claims(res: Any, p: Plugin, device_class: str, count: int) -> None:
    """``count`` one-device claims, allocated as the scheduler would (status subresource, node selector)."""
    assert p.client is not None
    for i in range(count):
        name = f"{p.node}-{i}"
        body = {
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"devices": {"requests": [{"name": "dev", "exactly": {"deviceClassName": device_class}}]}},
        }  # fmt: skip
        obj = json.loads(res.create_namespaced_resource_claim(NAMESPACE, body, _preload_content=False).data)
        device = p.devices[i % len(p.devices)]
        obj["status"] = {
            "allocation": {
                "devices": {"results": [{"request": "dev", "driver": p.client.driver, "pool": p.pool,
                                         "device": device}]},
                "nodeSelector": {"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [p.node]}]}]},
            }
        }  # fmt: skip
        res.replace_namespaced_resource_claim_status(name, NAMESPACE, obj, _preload_content=False)
        p.claims.append((name, obj["metadata"]["uid"]))
        p.allocated[obj["metadata"]["uid"]] = device


def _check(p: Plugin, what: str, resp: Any, claims: Sequence[tuple[str, str]]) -> None:
    for name, uid in claims:
        got = resp.claims.get(uid)
        if got is None or got.error:
            why = "no result" if got is None else got.error
            raise SystemExit(f"{p.label}: {what} of claim {NAMESPACE}/{name} failed: {why}; its log: {p.log_path}")
        returned = [(d.pool_name, d.device_name) for d in getattr(got, "devices", ())]
        if what == "NodePrepareResources" and returned != [(p.pool, p.allocated[uid])]:
            raise SystemExit(f"{p.label}: NodePrepareResources of claim {NAMESPACE}/{name} returned devices "
                             f"{returned}, but the allocation names {[(p.pool, p.allocated[uid])]}")  # fmt: skip


def cycle(p: Plugin, claim: tuple[str, str], record: bool, phase: str) -> None:
    assert p.client is not None
    t = time.perf_counter()
    if phase == "prepare":
        resp = p.client.prepare([claim])
        dt = (time.perf_counter() - t) * 1000
        _check(p, "NodePrepareResources", resp, [claim])
        if record:
            p.figures.prepare_ms.append(dt)
    else:
        resp = p.client.unprepare([claim])
        dt = (time.perf_counter() - t) * 1000
        _check(p, "NodeUnprepareResources", resp, [claim])
        if record:
            p.figures.unprepare_ms.append(dt)


def run_rounds(pair: Sequence[Plugin], start: int, stop: int, record: bool) -> None:
    """Round i: prepare claim i on both plugins, then unprepare both; the order flips every round."""
    for i in range(start, stop):
        order = pair if i % 2 == 0 else pair[::-1]
        for p in order:
            cycle(p, p.claims[i], record, "prepare")
        for p in order:
            cycle(p, p.claims[i], record, "unprepare")
        if record and (i - start + 1) % 60 == 0:
            progress(f"round {i - start + 1}/{stop - start}")


def snn_plugin_cmd(kubeconfig: Path, dirs: Any, node_config: Path) -> list[str]:
    from snn_dra.api.attributes import DRIVER_NAME
    from snn_dra.driver.embedded.cluster import plugin_command

    return [
        *plugin_command(), "kubelet-plugin", f"--node-name={SNN_NODE}", f"--node-config={node_config}",
        f"--kubeconfig={kubeconfig}", f"--plugin-dir={dirs.kubelet_root / 'plugins' / DRIVER_NAME}",
        f"--registry-dir={dirs.registry_dir}", f"--cdi-dir={dirs.cdi_dir}",
    ]  # fmt: skip


def create_node(core: Any, name: str) -> None:
    """A Node as a kubelet registers it (the example driver reads its UID for the slices' owner reference)."""
    core.create_node({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
    })  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--peer-bin", required=True, type=Path, help="the peer's kubelet plugin binary")
    ap.add_argument("--peer-args", default=DEFAULT_PEER_ARGS,
                    help="its flags, shell-quoted; placeholders: " + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                    + f" (default: the example driver's: {DEFAULT_PEER_ARGS!r})")  # fmt: skip
    ap.add_argument("--peer-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment of the peer process (repeatable)")  # fmt: skip
    ap.add_argument("--peer-devices", default="",
                    help="comma-separated device names of the peer's pool (pool = its node name), used only "
                         "when the peer publishes no slices to read them from")  # fmt: skip
    ap.add_argument("--claims", type=int, default=240, help="measured one-device claims per driver")
    ap.add_argument("--warmup", type=int, default=10, help="unmeasured claims per driver before the rounds")
    ap.add_argument("--empty-calls", type=int, default=100, help="empty NodePrepareResources calls per driver")
    ap.add_argument("--node-config", type=Path, default=REPO / "deploy/node-configs/akida-pcie.yaml",
                    help="snn-dra's node config")  # fmt: skip
    ap.add_argument("--snn-device-type", default="chip",
                    help="snn-dra device type the claims allocate (chip: a whole accelerator, like the example "
                         "driver's GPUs)")  # fmt: skip
    ap.add_argument("--start-timeout", type=float, default=60.0, help="seconds to wait for registration")
    ap.add_argument("--publish-timeout", type=float, default=30.0, help="seconds to wait for a complete pool")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (plugin logs) after the run")
    args = ap.parse_args(argv)
    if not args.peer_bin.is_file() or not os.access(args.peer_bin, os.X_OK):
        raise SystemExit(f"--peer-bin {args.peer_bin}: not an executable file (build it as hack/bench/README.md says)")
    if args.claims < 2 or args.warmup < 0 or args.empty_calls < 1:
        raise SystemExit("--claims must be at least 2, --warmup at least 0, --empty-calls at least 1")
    try:
        peer_env = parse_env(args.peer_env)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None

    from kubernetes import client, config

    from snn_dra.driver.embedded.apiserver import EmbeddedApiServer
    from snn_dra.driver.embedded.cluster import NodeDirs

    root = Path(tempfile.mkdtemp(prefix="snn-peer-", dir="/tmp"))  # short: socket paths stay under 108 bytes
    work = root / "logs"
    work.mkdir()
    server = EmbeddedApiServer(profile="1.37", state_dir=root / "apiserver")
    plugins: list[Plugin] = []
    try:
        server.start()
        kubeconfig = server.kubeconfig_path
        api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        res = client.ResourceV1Api(api)
        dirs = {n: NodeDirs(root / "nodes" / n) for n in (SNN_NODE, PEER_NODE)}
        for n, d in dirs.items():
            create_node(client.CoreV1Api(api), n)
            for sub in (d.registry_dir, d.kubelet_root / "plugins", d.cdi_dir):
                sub.mkdir(parents=True, exist_ok=True, mode=0o750)
        # -- start each plugin alone (start figures are not shared with the other's start-up) -----------------
        progress(f"API server up ({kubeconfig}); starting snn-dra on node {SNN_NODE}")
        snn_cmd = snn_plugin_cmd(kubeconfig, dirs[SNN_NODE], args.node_config.absolute())
        snn = launch("snn-dra", SNN_NODE, snn_cmd, {}, dirs[SNN_NODE], work)
        plugins.append(snn)
        wait_registered(snn, args.start_timeout)
        snn_pool = wait_published(snn, server.store, args.publish_timeout)
        if snn_pool is None:
            raise SystemExit(f"snn-dra published no slices: {snn.figures.slices_note}")
        snn.pool, devices = snn_pool
        snn.devices = pick_devices(devices, snn.client.driver if snn.client else "", args.snn_device_type)

        pdirs = dirs[PEER_NODE]
        values = {
            "node": PEER_NODE, "kubeconfig": str(kubeconfig), "cdi_dir": str(pdirs.cdi_dir),
            "registry_dir": str(pdirs.registry_dir), "plugins_dir": str(pdirs.kubelet_root / "plugins"),
            "kubelet_root": str(pdirs.kubelet_root), "work_dir": str(work),
        }  # fmt: skip
        try:
            peer_cmd = [str(args.peer_bin.absolute()), *expand_args(args.peer_args, values)]
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        progress(f"starting the peer on node {PEER_NODE}: {shlex.join(peer_cmd)}")
        peer = launch(args.peer_bin.name, PEER_NODE, peer_cmd, peer_env, pdirs, work)
        plugins.append(peer)
        wait_registered(peer, args.start_timeout)
        assert peer.client is not None and snn.client is not None
        peer.label = peer.figures.label = f"peer {peer.client.driver}"
        peer_pool = wait_published(peer, server.store, args.publish_timeout)
        if peer_pool is not None:
            peer.pool, devices = peer_pool
            peer.devices = pick_devices(devices, peer.client.driver, None)
        elif args.peer_devices:
            progress(f"{peer.figures.slices_note}; using --peer-devices in pool {PEER_NODE}")
            peer.pool, peer.devices = PEER_NODE, [d for d in args.peer_devices.split(",") if d]
        else:
            raise SystemExit(f"{peer.figures.slices_note}. Name its devices with --peer-devices (the example "
                             "driver's: gpu-0,...,gpu-7 in pool <node>) to measure prepare anyway.")  # fmt: skip
        progress(f"registered: snn-dra {snn.figures.start_to_socket_s:.3f} s, peer "
                 f"{peer.figures.start_to_socket_s:.3f} s; devices: snn-dra {len(snn.devices)} "
                 f"({args.snn_device_type}), peer {len(peer.devices)}")  # fmt: skip

        # -- claims: real, allocated, readable by each driver ------------------------------------------------
        for p in (snn, peer):
            assert p.client is not None
            cls = f"bench-{p.node}"
            device_class: Any = {
                "apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": cls},
                "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{p.client.driver}"'}}]},
            }  # fmt: skip
            res.create_device_class(device_class)
            progress(f"creating {args.warmup + args.claims} allocated claims for {p.label}")
            create_claims(res, p, cls, args.warmup + args.claims)

        pair = (snn, peer)
        progress(f"warm-up: {args.warmup} rounds")
        run_rounds(pair, 0, args.warmup, record=False)
        for p in pair:
            p.figures.rss_mib = p.rss_mib()
        for i in range(args.empty_calls):
            for p in pair if i % 2 == 0 else pair[::-1]:
                assert p.client is not None
                t = time.perf_counter()
                p.client.prepare([])
                p.figures.empty_ms.append((time.perf_counter() - t) * 1000)
        progress(f"measuring: {args.claims} rounds (prepare + unprepare on both plugins, interleaved)")
        load_before = loadavg(Path("/proc/loadavg").read_text())
        ticks0 = {p.node: p.ticks() for p in pair}
        run_rounds(pair, args.warmup, args.warmup + args.claims, record=True)
        hz = os.sysconf("SC_CLK_TCK")
        for p in pair:
            p.figures.cpu_ms_per_cycle = (p.ticks() - ticks0[p.node]) * 1000 / hz / args.claims
            p.alive()

        print(
            f"{args.claims} one-device claims per driver after {args.warmup} warm-up rounds, interleaved call by "
            f"call; empty call: median of {args.empty_calls}; CPU: plugin utime+stime over the measured rounds; "
            f"machine load (1 min) {load_before:.2f} before, {loadavg(Path('/proc/loadavg').read_text()):.2f} after "
            f"on {os.cpu_count()} CPUs"
        )
        print(render_table(snn.figures, peer.figures))
        print(summary_line(snn.figures, peer.figures))
    finally:
        for p in plugins:
            p.stop()
        if args.keep:
            kept = Path(f"/tmp/peer-bench-{os.getpid()}")
            shutil.copytree(work, kept)
            progress(f"plugin logs kept in {kept}")
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
