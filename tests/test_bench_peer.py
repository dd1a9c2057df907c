"""The side-by-side peer benchmark's own arithmetic and parsing: what it prints must be what it measured.

Only the pure parts of hack/bench/peer.py are exercised here (no plugin processes, no Go toolchain): percentiles,
ratios, the /proc readers, the flag template, the pool-completeness rule and the table and summary line.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PEER_PY = Path(__file__).resolve().parent.parent / "hack" / "bench" / "peer.py"


@pytest.fixture(scope="module")
def peer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peer_bench", PEER_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["peer_bench"] = module  # dataclasses resolve their annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["peer_bench"]
    return module


# ------------------------------------------------------------------------------------------ percentiles, ratios
def test_percentile_is_nearest_rank_over_sorted_samples(peer: ModuleType) -> None:
    assert peer.percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    samples = [float(x) for x in range(240, 0, -1)]  # unsorted on purpose
    assert peer.percentile(samples, 0.99) == 238.0  # rank round(0.99 * 239) = 237 -> the 238th value
    assert peer.percentile(samples, 0.0) == 1.0
    assert peer.percentile(samples, 1.0) == 240.0
    assert peer.percentile([7.5], 0.99) == 7.5


def test_percentile_refuses_no_samples_and_bad_q(peer: ModuleType) -> None:
    with pytest.raises(ValueError, match="no samples"):
        peer.percentile([], 0.5)
    with pytest.raises(ValueError, match=r"q=1.5 must be within \[0, 1\]"):
        peer.percentile([1.0], 1.5)


def test_ratio_is_ours_over_theirs_and_missing_when_undefined(peer: ModuleType) -> None:
    assert peer.ratio(10.0, 4.0) == 2.5
    assert peer.ratio(None, 4.0) is None
    assert peer.ratio(1.0, None) is None
    assert peer.ratio(1.0, 0.0) is None
    assert peer.fmt_ratio(2.345) == "2.35"
    assert peer.fmt_ratio(None) == "n/a"


# ------------------------------------------------------------------------------------------ /proc parsing
def test_cpu_ticks_counts_fields_after_the_last_parenthesis(peer: ModuleType) -> None:
    # comm "a) (b" holds a space and both parentheses, as a hostile process name may.
    fields = ["S", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "1234", "567", "99", "98"]
    line = "4242 (a) (b) " + " ".join(fields) + " 20 0 1"
    assert peer.cpu_ticks(line) == 1234 + 567


def test_cpu_ticks_of_this_process_matches_os_times(peer: ModuleType) -> None:
    deadline = os.times().user + 0.2
    while os.times().user < deadline:  # burn a little CPU so the figure is not zero
        sum(range(10_000))
    t = os.times()
    ticks = peer.cpu_ticks(Path("/proc/self/stat").read_text())
    assert abs(ticks / os.sysconf("SC_CLK_TCK") - (t.user + t.system)) < 0.1


def test_cpu_ticks_refuses_a_line_that_is_not_proc_stat(peer: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"no '\)' closing the command name"):
        peer.cpu_ticks("4242 comm S 1 2")
    with pytest.raises(ValueError, match="expected at least 15"):
        peer.cpu_ticks("4242 (comm) S 1 2")


def test_rss_kib_reads_vmrss(peer: ModuleType) -> None:
    status = "Name:\tx\nVmPeak:\t  900 kB\nVmRSS:\t  123456 kB\nThreads:\t3\n"
    assert peer.rss_kib(status) == 123456
    own = peer.rss_kib(Path("/proc/self/status").read_text())
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    assert abs(own - resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024) < 4096  # same process, moments apart


def test_rss_kib_says_when_the_row_is_missing(peer: ModuleType) -> None:
    with pytest.raises(ValueError, match="no VmRSS row"):
        peer.rss_kib("Name:\tzombie\nState:\tZ (zombie)\n")
    with pytest.raises(ValueError, match="unexpected VmRSS row"):
        peer.rss_kib("VmRSS:\t12 MB\n")


def test_last_error_finds_the_newest_error_line(peer: ModuleType) -> None:
    log = (
        'E1203 18:38:14.1 1 driver.go:159] "processing" err="create resource slice: old"\n'
        'I1203 18:38:15.1 1 driver.go:90] "PrepareResourceClaims is called"\n'
        'E1203 18:38:16.1 1 driver.go:159] "processing" err="create resource slice: new"\n'
        'I1203 18:38:17.1 1 driver.go:90] "fine"\n'
    )
    assert peer.last_error(log).endswith('err="create resource slice: new"')
    assert peer.last_error("Everything fine\n") == ""
    cut = peer.last_error("ERROR " + "x" * 500, limit=50)
    assert len(cut) == 50 and cut.endswith("...")


# ------------------------------------------------------------------------------------------ flags and env
def test_expand_args_fills_placeholders_and_keeps_quoting(peer: ModuleType) -> None:
    values = {"node": "peer-bench", "cdi_dir": "/tmp/x y/cdi"}
    got = peer.expand_args("--node-name={node} --cdi-root='{cdi_dir}' --num-devices 4", values)
    assert got == ["--node-name=peer-bench", "--cdi-root=/tmp/x y/cdi", "--num-devices", "4"]


def test_expand_args_names_an_unknown_placeholder(peer: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"unknown placeholder \{nodename\} in '--node=\{nodename\}'; known: \{node\}"):
        peer.expand_args("--node={nodename}", {"node": "n"})


def test_default_peer_args_use_only_known_placeholders(peer: ModuleType) -> None:
    values = {name: f"<{name}>" for name in peer.PLACEHOLDERS}
    args = peer.expand_args(peer.DEFAULT_PEER_ARGS, values)
    assert "--node-name=<node>" in args and "--kubelet-plugins-directory-path=<plugins_dir>" in args


def test_parse_env(peer: ModuleType) -> None:
    assert peer.parse_env(["KUBE_FEATURE_WatchListClient=false", "X=a=b"]) == {
        "KUBE_FEATURE_WatchListClient": "false",
        "X": "a=b",
    }
    with pytest.raises(ValueError, match="expected NAME=VALUE"):
        peer.parse_env(["NOVALUE"])


# ------------------------------------------------------------------------------------------ slices
def _slice(name: str, driver: str, node: str, gen: int, count: int, devices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": name},
        "spec": {
            "driver": driver,
            "nodeName": node,
            "pool": {"name": node, "generation": gen, "resourceSliceCount": count},
            "devices": devices,
        },
    }


def _dev(name: str, typ: str | None = None, key: str = "type") -> dict[str, Any]:
    return {"name": name, "attributes": {key: {"string": typ}} if typ else {}}


def test_pool_state_waits_for_every_slice_of_the_newest_generation(peer: ModuleType) -> None:
    old = _slice("n-old", "d.example.com", "n", 1, 1, [_dev("stale")])
    first = _slice("n-b", "d.example.com", "n", 2, 2, [_dev("gpu-2"), _dev("gpu-3")])
    second = _slice("n-a", "d.example.com", "n", 2, 2, [_dev("gpu-0"), _dev("gpu-1")])
    other_node = _slice("m-a", "d.example.com", "m", 5, 1, [_dev("x")])
    other_driver = _slice("n-z", "e.example.com", "n", 5, 1, [_dev("y")])
    assert peer.pool_state([old, first, other_node, other_driver], "d.example.com", "n") is None
    pool, devices = peer.pool_state([old, first, second, other_node, other_driver], "d.example.com", "n")
    assert pool == "n"
    assert [d["name"] for d in devices] == ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]  # slices in name order
    assert peer.pool_state([], "d.example.com", "n") is None


def test_pick_devices_filters_on_the_type_attribute(peer: ModuleType) -> None:
    devices = [_dev("c0", "chip"), _dev("g0", "coreGroup"), _dev("c1", "chip", key="snn.dra.dev/type")]
    assert peer.pick_devices(devices, "snn.dra.dev", "chip") == ["c0", "c1"]
    assert peer.pick_devices(devices, "snn.dra.dev", None) == ["c0", "g0", "c1"]
    with pytest.raises(ValueError, match=r"no device of type 'router' \(types seen: \['chip', 'coreGroup'\]\)"):
        peer.pick_devices(devices, "snn.dra.dev", "router")


# ------------------------------------------------------------------------------------------ output
def _figures(peer: ModuleType) -> tuple[Any, Any]:
    ours = peer.Figures(
        "snn-dra",
        prepare_ms=[float(x) for x in range(1, 101)],  # p50 51, p99 99
        unprepare_ms=[4.0] * 10,
        empty_ms=[1.0, 1.0, 3.0],
        cpu_ms_per_cycle=12.0,
        rss_mib=90.0,
        start_to_socket_s=1.5,
        start_to_slices_s=2.25,
    )
    theirs = peer.Figures(
        "peer gpu.example.com",
        prepare_ms=[float(x) / 2 for x in range(1, 101)],  # p50 25.5, p99 49.5
        unprepare_ms=[1.0] * 10,
        empty_ms=[0.5],
        cpu_ms_per_cycle=6.0,
        rss_mib=45.0,
        start_to_socket_s=0.05,
        start_to_slices_s=None,
        slices_note="no complete pool of driver gpu.example.com on node peer-bench within 30 s of start",
    )
    return ours, theirs


def test_summary_line_is_exactly_the_documented_form(peer: ModuleType) -> None:
    ours, theirs = _figures(peer)
    line = peer.summary_line(ours, theirs)
    assert line == (
        "peer-bench: prepare_p50_ratio=2.00 prepare_p99_ratio=2.00 unprepare_p50_ratio=4.00 rss_ratio=2.00 "
        "start_s=1.500 peer_start_s=0.050"
    )
    assert re.fullmatch(
        r"peer-bench: prepare_p50_ratio=\S+ prepare_p99_ratio=\S+ unprepare_p50_ratio=\S+ rss_ratio=\S+ "
        r"start_s=\S+ peer_start_s=\S+",
        line,
    )


def test_summary_line_says_n_a_for_what_was_not_measured(peer: ModuleType) -> None:
    ours, theirs = _figures(peer)
    theirs.rss_mib = None
    theirs.start_to_socket_s = None
    assert peer.summary_line(ours, theirs).endswith("rss_ratio=n/a start_s=1.500 peer_start_s=n/a")


def test_table_rows_carry_both_figures_and_the_ratio(peer: ModuleType) -> None:
    ours, theirs = _figures(peer)
    rows = {r[0]: r[1:] for r in peer.table_rows(ours, theirs)}
    assert rows["NodePrepareResources p50"] == ("25.50 ms", "51.00 ms", "2.00x")
    assert rows["NodePrepareResources p99"] == ("49.50 ms", "99.00 ms", "2.00x")
    assert rows["NodeUnprepareResources p50"] == ("1.00 ms", "4.00 ms", "4.00x")
    assert rows["CPU per prepare+unprepare"] == ("6.00 ms", "12.00 ms", "2.00x")
    assert rows["RSS after warm-up"] == ("45.0 MiB", "90.0 MiB", "2.00x")
    assert rows["process start to registration socket"] == ("0.050 s", "1.500 s", "30.00x")
    assert rows["process start to own slices published"] == ("n/a", "2.250 s", "n/a")
    assert rows["empty NodePrepareResources call"] == ("0.50 ms", "1.00 ms", "2.00x")


def test_render_table_aligns_columns_and_explains_missing_figures(peer: ModuleType) -> None:
    ours, theirs = _figures(peer)
    text = peer.render_table(ours, theirs)
    lines = text.splitlines()
    assert lines[0].split() == ["measure", "peer", "gpu.example.com", "snn-dra", "ratio", "(snn-dra", "/", "peer)"]
    table = lines[: 2 + len(peer.table_rows(ours, theirs))]
    assert len({len(row) for row in table}) == 1  # every row as wide as the header: columns line up
    assert set(lines[1]) == {"-", " "}
    assert lines[-1] == f"peer gpu.example.com: {theirs.slices_note}"


# ------------------------------------------------------------------------------------------ the harness itself
def test_harness_imports_of_the_project_resolve(peer: ModuleType) -> None:
    """peer.py imports snn_dra lazily (its pure parts load without it); a moved name must fail here, not mid-run."""
    import ast

    tree = ast.parse(PEER_PY.read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("snn_dra")]
    assert len(imports) >= 5
    for node in imports:
        module = importlib.import_module(str(node.module))
        for alias in node.names:
            assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                f"peer.py imports {alias.name} from {node.module}, which has no such name"
            )


def test_a_peer_binary_that_is_not_executable_is_refused_before_anything_starts(
    peer: ModuleType, tmp_path: Path
) -> None:
    script = tmp_path / "plugin"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(SystemExit, match=r"--peer-bin .*plugin: not an executable file \(build it as"):
        peer.main(["--peer-bin", str(script)])
    with pytest.raises(SystemExit, match=r"--peer-env 'JUSTANAME': expected NAME=VALUE"):
        script.chmod(0o755)
        peer.main(["--peer-bin", str(script), "--peer-env", "JUSTANAME"])


@pytest.mark.slow
def test_snn_dra_beside_itself_gives_every_figure_and_ratios_near_one(repo_root: Path) -> None:
    """The whole harness with snn-dra as its own peer (no Go needed): both register, publish and prepare."""
    import subprocess

    snn_dra = Path(sys.executable).parent / "snn-dra"
    node_config = repo_root / "deploy" / "node-configs" / "akida-pcie.yaml"
    peer_args = (
        f"kubelet-plugin --node-name={{node}} --node-config={node_config} --kubeconfig={{kubeconfig}} "
        "--plugin-dir={plugins_dir}/snn.dra.dev --registry-dir={registry_dir} --cdi-dir={cdi_dir}"
    )
    args = ["--claims", "6", "--warmup", "1", "--empty-calls", "4", "--publish-timeout", "60"]
    cmd = [sys.executable, str(PEER_PY), "--peer-bin", str(snn_dra), "--peer-args", peer_args, *args]
    # Own process group: if the harness hangs, its plugin processes go down with it.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    lines = out.strip().splitlines()
    m = re.fullmatch(
        r"peer-bench: prepare_p50_ratio=(\S+) prepare_p99_ratio=(\S+) unprepare_p50_ratio=(\S+) rss_ratio=(\S+) "
        r"start_s=(\S+) peer_start_s=(\S+)",
        lines[-1],
    )
    assert m, lines[-1]
    ratios = [float(x) for x in m.groups()[:4]]
    assert all(r > 0 for r in ratios)
    assert 0.5 < ratios[3] < 2.0  # the same program on the same node config: RSS alike
    assert float(m.group(5)) > 0 and float(m.group(6)) > 0
    table = "\n".join(lines)
    assert "peer snn.dra.dev" in table
    published = next(row for row in lines if row.startswith("process start to own slices published"))
    assert "n/a" not in published  # both pools were read from the API server, so both publish times exist
    assert "6 one-device claims per driver" in table


def test_loadavg_reads_the_one_minute_figure(peer: ModuleType) -> None:
    assert peer.loadavg("2.57 1.90 1.20 3/812 42\n") == 2.57
    assert peer.loadavg(Path("/proc/loadavg").read_text()) == pytest.approx(os.getloadavg()[0], abs=0.5)
    with pytest.raises(ValueError, match="not a /proc/loadavg line"):
        peer.loadavg("")
