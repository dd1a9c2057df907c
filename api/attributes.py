"""The public CEL contract: every attribute and capacity name the driver publishes.

Selectors in DeviceClasses and claims are written against these names, so they change only with a
new API version. Names are unqualified IDs (C identifiers, <= 32 chars); the API server files them
under the driver's domain, so a selector reads ``device.attributes["snn.dra.dev"].family``.
Every device of one type carries the same set of names, so a selector never hits a missing key.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

DRIVER_NAME: Final = "snn.dra.dev"
"""Driver name and attribute domain."""

CONFIG_API_VERSION: Final = "snn.dra.dev/v1alpha1"
"""apiVersion of the opaque claim configuration and the node configuration."""


class DeviceType(StrEnum):
    """Levels of the published white-box hierarchy (value of the ``type`` attribute)."""

    CHIP = "chip"
    CORE_GROUP = "coreGroup"
    NEURON_CORE = "neuronCore"
    SPIKE_ROUTER = "spikeRouter"
    EVENT_QUEUE = "eventQueue"


class Family(StrEnum):
    """Chip families the simulated backend models and real discovery reports."""

    LOIHI2 = "loihi2"
    SPINNAKER2 = "spinnaker2"
    AKIDA = "akida"


# --- attributes carried by every device ---------------------------------------------------------
TYPE: Final = "type"
FAMILY: Final = "family"
MODEL: Final = "model"
CHIP_ID: Final = "chipID"
CHIP_SERIAL: Final = "chipSerial"
BOARD_ID: Final = "boardID"
SYSTEM_ID: Final = "systemID"
CHIP_X: Final = "chipX"
CHIP_Y: Final = "chipY"
CHIP_Z: Final = "chipZ"
CHIP_REGION: Final = "chipRegion"
"""Locality key: chips in the same 2x2 block of one layer of their board's chip mesh share it (at most 2
chip-to-chip hops apart). Compare it only together with ``boardID`` (``matchAttribute`` on both)."""
HOPS_TO_HOST: Final = "hopsToHost"
"""Router hops from the device (a chip: the chip itself; a core or group: its origin core) to the host interface."""
VERSION: Final = "version"
"""Firmware version (semver), so selectors can use ``isGreaterThan(semver("1.2.0"))``."""
CORE_COUNT: Final = "coreCount"

# --- core geometry (chip, coreGroup, neuronCore) -------------------------------------------------
CORE_X: Final = "coreX"
CORE_Y: Final = "coreY"
CORE_WIDTH: Final = "coreWidth"
CORE_HEIGHT: Final = "coreHeight"

# --- capacities (Quantities) ----------------------------------------------------------------------
CAP_CORES: Final = "cores"
CAP_NEURONS: Final = "neurons"
CAP_SYNAPSE_MEMORY: Final = "synapseMemory"
"""Bytes of synapse SRAM."""
CAP_SPIKE_THROUGHPUT_KEPS: Final = "spikeThroughputKEPS"
"""Spike events per second the cores can emit, in thousands."""
CAP_EVENT_THROUGHPUT_MEPS: Final = "eventThroughputMEPS"
"""Events per second a router or queue forwards, in millions (consumable on shared devices)."""
CAP_QUEUE_DEPTH: Final = "queueDepth"
"""Event-queue slots (consumable on shared devices)."""

# --- standard Kubernetes attributes ---------------------------------------------------------------
PCI_BUS_ID: Final = "resource.kubernetes.io/pciBusID"
PCIE_ROOT: Final = "resource.kubernetes.io/pcieRoot"
