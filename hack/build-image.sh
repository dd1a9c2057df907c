#!/usr/bin/env bash
# Build the driver image from the repository's Dockerfile. Environment:
#   IMAGE            repository (default ghcr.io/snn-dra/snn-dra, the name the manifests use)
#   TAG              tag (default dev, what deploy/overlays/kind expects)
#   CONTAINER_TOOL   docker or podman (default docker)
# Prints the image reference on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-ghcr.io/snn-dra/snn-dra}
TAG=${TAG:-dev}
TOOL=${CONTAINER_TOOL:-docker}

if ! command -v "$TOOL" >/dev/null 2>&1; then
  echo "error: '$TOOL' is not installed; set CONTAINER_TOOL=podman to use podman" >&2
  exit 1
fi

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n1)
REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

echo "==> building $IMAGE:$TAG (snn-dra $VERSION, $REVISION)" >&2
"$TOOL" build \
  --label "org.opencontainers.image.version=$VERSION" \
  --label "org.opencontainers.image.revision=$REVISION" \
  -t "$IMAGE:$TAG" .
echo "$IMAGE:$TAG"
