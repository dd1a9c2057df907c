"""The published chip figures stay pinned to the public ones (docs/hardware.md)."""

from __future__ import annotations

import pytest

from snn_dra.api.attributes import Family
from snn_dra.api.nodeconfig import BoardConfig, NodeConfig
from snn_dra.driver.backends import SimulatedBackend
from snn_dra.driver.backends.families import (
    AKD1000,
    AKD1500,
    AKIDA_PCI_DEVICES,
    AKIDA_PCI_VENDOR,
    CHIP_SPECS,
    LOIHI2,
    SPINNAKER2,
    ChipSpec,
    default_board_mesh,
    spec_for,
)

SIMULATED_FIGURES = {
    "spikeThroughputKEPS",
    "eventThroughputMEPS",
    "eventQueues",
    "queueDepth",
    "queueEventThroughputMEPS",
}


def one_chip(family: Family, chip_model: str | None = None) -> SimulatedBackend:
    board = BoardConfig.model_validate({"family": family, "model": "b", "chips": 1, "chipModel": chip_model})
    return SimulatedBackend(NodeConfig(boards=[board]), "node-a")


def test_loihi2_figures() -> None:
    assert LOIHI2.nominal_cores == 128
    assert LOIHI2.neurons_per_chip == 1_048_576  # 1 M neurons per chip
    assert LOIHI2.neurons_per_core == 8_192
    assert LOIHI2.synapse_memory_per_core == 128 * 1024
    assert LOIHI2.embedded_cpus == 6
    assert LOIHI2.natural_group == (4, 4)
    assert LOIHI2.attachment == "ethernet"


def test_spinnaker2_figures() -> None:
    assert SPINNAKER2.nominal_cores == 152
    assert SPINNAKER2.groups == 38 and SPINNAKER2.cores_per_group == 4
    assert SPINNAKER2.neurons_per_core == 1_000
    # ~19-20 MB SRAM per chip
    assert 19_000_000 <= SPINNAKER2.synapse_memory_per_chip <= 20_000_000
    assert default_board_mesh(Family.SPINNAKER2, 48) == (8, 6, 1)


def test_akida_figures() -> None:
    assert AKD1000.nominal_cores == 80
    assert AKD1000.groups == 20 and AKD1000.natural_group == (2, 2)
    assert AKD1000.neurons_per_chip == 1_200_000
    assert AKD1000.synapse_memory_per_chip == 8_000_000  # 8 MB
    assert AKD1000.attachment == "pcie"
    assert AKD1500.nominal_cores == 32 and AKD1500.groups == 8
    assert AKIDA_PCI_VENDOR == 0x1E7C
    assert AKIDA_PCI_DEVICES == {0xBCA1: AKD1000, 0xA500: AKD1500}


@pytest.mark.parametrize("spec", list(CHIP_SPECS.values()), ids=list(CHIP_SPECS))
def test_core_layout_is_a_bijection_onto_the_mesh(spec: ChipSpec) -> None:
    positions = [spec.core_position(i) for i in range(spec.nominal_cores)]
    w, h = spec.core_mesh
    assert sorted(positions) == sorted((x, y) for x in range(w) for y in range(h))
    # Cores of one natural group share one group-sized rectangle.
    gw, gh = spec.natural_group
    for group in range(spec.groups):
        members = positions[group * gw * gh : (group + 1) * gw * gh]
        xs, ys = {x for x, _ in members}, {y for _, y in members}
        assert max(xs) - min(xs) == gw - 1 and max(ys) - min(ys) == gh - 1
        assert min(xs) % gw == 0 and min(ys) % gh == 0
    with pytest.raises(ValueError, match="outside"):
        spec.core_position(spec.nominal_cores)


@pytest.mark.parametrize("spec", list(CHIP_SPECS.values()), ids=list(CHIP_SPECS))
def test_every_throughput_figure_is_labelled_simulated_with_a_reason(spec: ChipSpec) -> None:
    assert set(spec.simulated) == SIMULATED_FIGURES
    assert all(len(reason) > 10 for reason in spec.simulated.values())


@pytest.mark.parametrize(
    ("family", "model", "cores", "neurons", "memory"),
    [
        (Family.LOIHI2, None, 128, 1_048_576, 16 * 1024 * 1024),
        (Family.SPINNAKER2, None, 152, 152_000, 152 * 128 * 1024),
        (Family.AKIDA, None, 80, 1_200_000, 8_000_000),
        (Family.AKIDA, "akd1500", 32, 480_000, 3_200_000),
    ],
)
def test_published_chip_matches_the_figures(
    family: Family, model: str | None, cores: int, neurons: int, memory: int
) -> None:
    chip = one_chip(family, model).discover().chips[0]
    assert chip.nominal_cores == cores == len(chip.cores)
    assert sum(c.neurons for c in chip.cores) == neurons
    assert sum(c.synapse_memory_bytes for c in chip.cores) == memory
    assert chip.core_mesh[0] * chip.core_mesh[1] == cores


def test_spec_for_refuses_a_model_of_another_family() -> None:
    with pytest.raises(ValueError, match=r"'loihi2' is not a akida chip; allowed: akd1000, akd1500"):
        spec_for(Family.AKIDA, "loihi2")
