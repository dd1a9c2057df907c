"""The wheel installs snn_dra.api and snn_dra.driver only: never a bare `api` or `driver` module."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True,
        cwd=build,
    )
    (built,) = out.glob("snn_dra-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_only_namespaced_packages_are_installed(wheel_names: list[str]) -> None:
    top_level = {name.split("/", 1)[0] for name in wheel_names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top_level == {"snn_dra"}, f"unexpected top-level entries in the wheel: {sorted(top_level)}"
    assert "snn_dra/__init__.py" not in wheel_names, "snn_dra must stay a namespace package"


def test_every_source_package_is_in_the_wheel(wheel_names: list[str]) -> None:
    for src in ("api", "driver"):
        for init in (REPO / src).rglob("__init__.py"):
            rel = init.relative_to(REPO).as_posix()
            assert f"snn_dra/{rel}" in wheel_names, f"{rel} is missing from the wheel"


def test_typed_marker_and_console_script(wheel: Path, wheel_names: list[str]) -> None:
    assert "snn_dra/api/py.typed" in wheel_names
    assert "snn_dra/driver/py.typed" in wheel_names
    entry_points = next(n for n in wheel_names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(entry_points).decode()
    assert "snn-dra = snn_dra.driver.cli:main" in text


def test_no_bare_modules_importable_from_an_installed_layout() -> None:
    code = "import importlib.util as u; print(u.find_spec('api'), u.find_spec('driver'))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd="/").stdout
    assert out.strip() == "None None"
