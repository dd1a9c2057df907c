"""CDI (Container Device Interface) spec models, the subset this driver writes.

Only env, device nodes and bind mounts are modelled: hooks, intelRdt, additionalGids and netDevices are
left out on purpose, so no code path can ever emit them (a hook runs a host binary as root). Unknown
fields are rejected because the Go loader in containerd/CRI-O rejects them too. Dump with
``model_dump(by_alias=True, exclude_none=True)`` so optional fields stay out of the file; the lowest
``cdiVersion`` that covers what is used is computed in :mod:`snn_dra.driver.cdi`.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

KNOWN_VERSIONS: Final = ("0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0")
"""Versions the writer may emit; 0.1.0/0.2.0 exist but the Go minimum never goes below 0.3.0."""

_VENDOR = r"[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
_CLASS = r"[A-Za-z](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?"
KIND_RE: Final = re.compile(rf"^{_VENDOR}/{_CLASS}$")
DEVICE_NAME_RE: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?$")
ENV_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=[^\x00\n]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CdiDeviceNode(_Strict):
    path: Annotated[str, Field(pattern=r"^/")]
    host_path: Annotated[str, Field(pattern=r"^/")] | None = Field(default=None, alias="hostPath")
    type: Annotated[str, Field(pattern=r"^[bcup]$")] | None = None
    major: int | None = None
    minor: int | None = None
    permissions: Annotated[str, Field(pattern=r"^[rwm]{1,3}$")] | None = None


class CdiMount(_Strict):
    host_path: Annotated[str, Field(pattern=r"^/")] = Field(alias="hostPath")
    container_path: Annotated[str, Field(pattern=r"^/")] = Field(alias="containerPath")
    type: str | None = None
    options: list[str] | None = None


class CdiContainerEdits(_Strict):
    env: list[str] | None = None
    device_nodes: list[CdiDeviceNode] | None = Field(default=None, alias="deviceNodes")
    mounts: list[CdiMount] | None = None

    @field_validator("env")
    @classmethod
    def _env_entries(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or ():
            if not ENV_RE.match(entry):
                raise ValueError(f"env entry {entry!r} is not NAME=value with a C-identifier name")
        return value


class CdiDevice(_Strict):
    name: str
    annotations: dict[str, str] | None = None
    container_edits: CdiContainerEdits = Field(alias="containerEdits")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not DEVICE_NAME_RE.match(value):
            raise ValueError(f"CDI device name {value!r} must be [A-Za-z0-9_.:-], alphanumeric at both ends")
        return value


class CdiSpec(_Strict):
    cdi_version: str = Field(alias="cdiVersion")
    kind: str
    annotations: dict[str, str] | None = None
    devices: list[CdiDevice] = Field(min_length=1)
    container_edits: CdiContainerEdits | None = Field(default=None, alias="containerEdits")

    @field_validator("cdi_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value not in KNOWN_VERSIONS:
            raise ValueError(f"cdiVersion {value!r} is not one of {', '.join(KNOWN_VERSIONS)}")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if not KIND_RE.match(value) or len(value.split("/", 1)[0]) > 253:
            raise ValueError(f"kind {value!r} must be <vendor>/<class> (vendor a DNS subdomain, class <= 63 chars)")
        return value

    def qualified_name(self, device: str) -> str:
        """The ID a runtime resolves: ``<vendor>/<class>=<device>``."""
        return f"{self.kind}={device}"
