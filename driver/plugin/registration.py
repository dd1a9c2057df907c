"""The plugin registration service (``pluginregistration.Registration``) the kubelet's plugin watcher calls.

The kubelet finds ``<driver>-reg.sock``, asks GetInfo who we are and where the DRA service listens, and reports
the outcome through NotifyRegistrationStatus. A refused registration is answered with an error, as the Go
library does, so that the kubelet logs it and retries from the start.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from typing_extensions import override

from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2 as reg
from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2_grpc as reg_grpc

log = logging.getLogger("snn_dra.plugin.registration")

PLUGIN_TYPE = "DRAPlugin"
SUPPORTED_VERSIONS: tuple[str, ...] = (
    "v1.DRAPlugin",
    "v1beta1.DRAPlugin",
    "v1.DRAResourceHealth",
    "v1alpha1.DRAResourceHealth",
)
"""Short service names in order of preference; the kubelet takes the first DRAPlugin entry it knows."""


@dataclass(frozen=True, slots=True)
class RegistrationState:
    """The last status the kubelet reported; ``registered is None`` until it reports anything."""

    registered: bool | None = None
    error: str = ""


class RegistrationServicer(reg_grpc.RegistrationServicer):
    def __init__(self, driver_name: str, endpoint: Path, versions: tuple[str, ...] = SUPPORTED_VERSIONS) -> None:
        if not endpoint.is_absolute():
            raise ValueError(f"DRA endpoint {endpoint} must be absolute: the kubelet rejects relative endpoints")
        self._info = reg.PluginInfo(
            type=PLUGIN_TYPE, name=driver_name, endpoint=str(endpoint), supported_versions=list(versions)
        )
        self.state = RegistrationState()
        self._changed = asyncio.Event()

    @property
    def info(self) -> reg.PluginInfo:
        return self._info

    async def wait_for_status(self) -> RegistrationState:
        """Wait until the kubelet has reported a registration outcome."""
        while self.state.registered is None:
            await self._changed.wait()
            self._changed.clear()
        return self.state

    @override
    async def GetInfo(self, request: reg.InfoRequest, context: Any) -> reg.PluginInfo:
        log.info("GetInfo: advertising %s at %s (%s)", self._info.name, self._info.endpoint,
                 ", ".join(self._info.supported_versions))  # fmt: skip
        return self._info

    @override
    async def NotifyRegistrationStatus(
        self, request: reg.RegistrationStatus, context: Any
    ) -> reg.RegistrationStatusResponse:
        self.state = RegistrationState(registered=request.plugin_registered, error=request.error)
        self._changed.set()
        if not request.plugin_registered:
            log.error("kubelet refused the registration of %s: %s", self._info.name, request.error)
            await context.abort(grpc.StatusCode.UNKNOWN, f"failed registration process: {request.error}")
        log.info("kubelet registered %s", self._info.name)
        return reg.RegistrationStatusResponse()
