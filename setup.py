"""Package discovery that pyproject.toml cannot express on its own.

`snn_dra.api` and `snn_dra.driver` live in the top-level `api/` and `driver/` folders. Deriving the
subpackage list here keeps a new subpackage from silently missing from the wheel.
"""

from setuptools import find_packages, setup

_SOURCES = ("api", "driver")
_packages = [
    f"snn_dra.{name}"
    for name in find_packages(include=[f"{src}{suffix}" for src in _SOURCES for suffix in ("", ".*")])
]

setup(
    packages=_packages,
    package_dir={f"snn_dra.{src}": src for src in _SOURCES},
    package_data={"": ["py.typed", "*.proto", "*.pyi", "*.yaml", "*.json"]},
)
