# snn-dra driver image: the `snn-dra` CLI (kubelet plugin and tools) on python:3.11-slim.
# Built by hack/build-image.sh as ghcr.io/snn-dra/snn-dra:<tag>.
#
# The image runs as root on purpose: the kubelet's plugin registration directory
# (/var/lib/kubelet/plugins_registry) and the CDI spec directory (/var/run/cdi) are root-owned host
# directories, and only their owner can create sockets and files there. The DaemonSet drops every
# capability and keeps the root filesystem read-only instead (deploy/base/daemonset.yaml).

FROM python:3.11-slim AS build
WORKDIR /src
# Only what the wheel needs, so edits to tests or manifests do not invalidate the layer cache.
COPY pyproject.toml setup.py README.md ./
COPY api ./api
COPY driver ./driver
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/*.whl
LABEL org.opencontainers.image.title="snn-dra" \
      org.opencontainers.image.description="Kubernetes DRA driver for spiking-neural-network accelerators" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["snn-dra"]
CMD ["--help"]
