"""``grpc.health.v1.Health`` on a TCP port, for the kubelet's native ``grpc`` liveness/readiness/startup probes.

A socket that accepts connections proves little: the event loop may be stuck, or the servicer broken. So
every ``Check`` makes real calls through this plugin's own unix sockets, the way the kubelet reaches it: an
empty ``NodePrepareResources`` on the DRA socket (no claim, so no lock and no state touched) and ``GetInfo`` on
the registration socket (which must name this driver and advertise that DRA socket). ``SERVING`` only if both
answer within the timeout, else ``NOT_SERVING``. The kubelet's probe is native (``grpc: {port: N}``, GA since
1.27): no interpreter is started every few seconds to connect to a socket.

Only the overall service ``""`` (what the kubelet asks by default) and ``snn.dra.dev`` are known; any other
name gets ``NOT_FOUND``, as the standard health service does. ``Watch`` is not offered (probes never use it).

The listener does not share its port (``SO_REUSEPORT`` off): with ``hostNetwork`` a second instance on the node
must fail to bind rather than answer the first one's probes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from typing_extensions import override

from snn_dra.api.kubelet.dra.v1 import api_pb2 as dra_v1
from snn_dra.api.kubelet.dra.v1 import api_pb2_grpc as dra_v1_grpc
from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2 as reg
from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2_grpc as reg_grpc

log = logging.getLogger("snn_dra.plugin.liveness")

DEFAULT_TIMEOUT_SECONDS = 2.0
"""Per inner call; well inside a probe's usual 3-5 s timeoutSeconds."""


class LivenessServicer(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    def __init__(
        self, driver_name: str, dra_socket: Path, registration_socket: Path, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        self._driver = driver_name
        self._dra = dra_socket
        self._registration = registration_socket
        self._timeout = timeout
        self._last_problem = ""

    async def probe(self) -> str:
        """ "" when both sockets answer a real call as the kubelet would make it, else what failed."""
        try:
            async with grpc.aio.insecure_channel(f"unix://{self._dra}") as channel:
                await dra_v1_grpc.DRAPluginStub(channel).NodePrepareResources(
                    dra_v1.NodePrepareResourcesRequest(), timeout=self._timeout
                )
            async with grpc.aio.insecure_channel(f"unix://{self._registration}") as channel:
                info = await reg_grpc.RegistrationStub(channel).GetInfo(reg.InfoRequest(), timeout=self._timeout)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else None
            return f"{getattr(code, 'name', 'error')}: {exc.details() if hasattr(exc, 'details') else exc}"
        if info.name != self._driver or info.endpoint != str(self._dra):
            return f"GetInfo advertises {info.name} at {info.endpoint}, not {self._driver} at {self._dra}"
        return ""

    @override
    async def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> health_pb2.HealthCheckResponse:
        if request.service not in ("", self._driver):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        problem = await self.probe()
        if problem != self._last_problem:  # log changes only: probes come every few seconds
            if problem:
                log.error("liveness: NOT_SERVING: %s", problem)
            else:
                log.info("liveness: SERVING again")
            self._last_problem = problem
        status = health_pb2.HealthCheckResponse.NOT_SERVING if problem else health_pb2.HealthCheckResponse.SERVING
        return health_pb2.HealthCheckResponse(status=status)

    @override
    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Any) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Watch is not offered; use Check")


async def start_liveness_server(
    servicer: LivenessServicer, port: int, host: str = "[::]"
) -> tuple[grpc.aio.Server, int]:
    """Serve the health service on ``host:port`` (0 = any free port); returns the server and the bound port."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, bound
