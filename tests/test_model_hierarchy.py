"""Device model: levels, tiles, the per-tile counter scheme, publication order, topology and limits."""

from __future__ import annotations

from dataclasses import replace

import pytest
from model_inventory_helpers import family_inventory, make_chip, make_inventory

from snn_dra.api.attributes import DeviceType
from snn_dra.api.nodeconfig import CoreGroupShape, PublishConfig
from snn_dra.driver.model import (
    MAX_COUNTERS_PER_SET,
    DeviceModel,
    DeviceModelError,
    ModelDevice,
    build_model,
)
from snn_dra.driver.topology import chip_hops, core_hops, hops_between, hops_to_host

ALL = [DeviceType.CHIP, DeviceType.CORE_GROUP, DeviceType.NEURON_CORE, DeviceType.SPIKE_ROUTER, DeviceType.EVENT_QUEUE]


def publish(*levels: DeviceType, group: tuple[int, int] | None = None) -> PublishConfig:
    shape = CoreGroupShape(width=group[0], height=group[1]) if group else None
    return PublishConfig(levels=list(levels or ALL), coreGroup=shape)


def of_type(model: DeviceModel, t: DeviceType) -> list[ModelDevice]:
    return [d for d in model.devices if d.type == t]


# ---- counter arithmetic: what the allocator does with the published counters ----------------------


def fits(model: DeviceModel, names: list[str]) -> bool:
    """True when the devices can be allocated together without exceeding any shared counter."""
    available = {(cs.name, c): v for cs in model.counter_sets for c, v in cs.counters}
    for name in names:
        device = model.by_name(name)
        assert device is not None, name
        for consumption in device.consumes:
            for counter, value in consumption.counters:
                available[(consumption.counter_set, counter)] -= value
    return all(v >= 0 for v in available.values())


@pytest.mark.parametrize("model_name", ["loihi2", "spinnaker2", "akd1000"])
def test_counters_forbid_overlap_and_allow_disjoint_parts(model_name: str) -> None:
    model = build_model(family_inventory(model_name, 2), publish())
    chip0, chip1 = (c.name for c in make_inventory_chips(model))
    groups0 = [d for d in of_type(model, DeviceType.CORE_GROUP) if d.chip.id == chip0]
    g_a, g_b = groups0[0], groups0[1]
    core_in_a = next(d for d in of_type(model, DeviceType.NEURON_CORE) if d.cores[0] in g_a.cores)
    core_elsewhere = next(
        d for d in of_type(model, DeviceType.NEURON_CORE) if d.chip.id == chip0 and d.cores[0] not in g_a.cores
    )
    assert not fits(model, [chip0, g_a.name]), "a chip and a group of that chip must not both fit"
    assert not fits(model, [g_a.name, core_in_a.name]), "a group and a core inside it must not both fit"
    assert not fits(model, [chip0, core_in_a.name])
    assert fits(model, [g_a.name, g_b.name]), "two disjoint groups must fit together"
    assert fits(model, [g_a.name, core_elsewhere.name])
    assert fits(model, [chip1, g_a.name]), "parts of different chips never conflict"
    assert fits(model, [d.name for d in groups0]), "all groups of a chip fit together"
    cores0 = [d.name for d in of_type(model, DeviceType.NEURON_CORE) if d.chip.id == chip0]
    assert fits(model, cores0), "every core of a chip fits together"
    assert not fits(model, [chip0, chip0])


def make_inventory_chips(model: DeviceModel) -> list[ModelDevice]:
    return of_type(model, DeviceType.CHIP)


def test_spinnaker2_chip_consumes_two_counter_sets() -> None:
    model = build_model(family_inventory("spinnaker2", 1), publish())
    (chip,) = of_type(model, DeviceType.CHIP)
    assert len(model.counter_sets) == 2
    assert all(len(cs.counters) <= MAX_COUNTERS_PER_SET for cs in model.counter_sets)
    assert [c.counter_set for c in chip.consumes] == [cs.name for cs in model.counter_sets]
    tile_counters = [c for cs in model.counter_sets for c, _ in cs.counters if c.startswith("tile-")]
    assert len(tile_counters) == 38
    for d in of_type(model, DeviceType.CORE_GROUP) + of_type(model, DeviceType.NEURON_CORE):
        assert len(d.consumes) == 1


def test_tile_counter_holds_usable_cores_only() -> None:
    inv = make_inventory([make_chip("loihi2", 0, fused=(0, 1, 17))])
    model = build_model(inv, publish())
    counters = dict(model.counter_sets[0].counters)
    assert counters["tile-0"] == 14
    assert counters["tile-1"] == 15
    assert counters["tile-2"] == 16
    assert counters["neurons"] == 125 * 8192
    assert counters["synapse-memory"] == 125 * 128 * 1024
    assert len(of_type(model, DeviceType.NEURON_CORE)) == 125


def test_fully_fused_group_is_not_published() -> None:
    inv = make_inventory([make_chip("akd1000", 0, fused=(0, 1, 2, 3))])
    model = build_model(inv, publish())
    groups = of_type(model, DeviceType.CORE_GROUP)
    assert len(groups) == 19
    assert all("group-0" not in g.name for g in groups)
    assert "tile-0" not in dict(model.counter_sets[0].counters)


@pytest.mark.parametrize(
    "levels",
    [
        [DeviceType.CHIP],
        [DeviceType.CORE_GROUP, DeviceType.SPIKE_ROUTER],
        [DeviceType.NEURON_CORE, DeviceType.EVENT_QUEUE],
    ],
)
def test_single_partition_level_needs_no_counters(levels: list[DeviceType]) -> None:
    model = build_model(family_inventory("loihi2", 2), publish(*levels))
    assert model.counter_sets == ()
    assert all(not d.consumes for d in model.devices)
    assert {d.type for d in model.devices} == set(levels)


def test_levels_and_counts_per_family() -> None:
    loihi = build_model(family_inventory("loihi2", 2), publish())
    assert len(of_type(loihi, DeviceType.CHIP)) == 2
    assert len(of_type(loihi, DeviceType.CORE_GROUP)) == 16
    assert len(of_type(loihi, DeviceType.NEURON_CORE)) == 256
    assert len(of_type(loihi, DeviceType.SPIKE_ROUTER)) == 2
    assert len(of_type(loihi, DeviceType.EVENT_QUEUE)) == 6
    spinn = build_model(family_inventory("spinnaker2", 1), publish())
    assert len(of_type(spinn, DeviceType.CORE_GROUP)) == 38
    assert all(len(g.cores) == 4 for g in of_type(spinn, DeviceType.CORE_GROUP))
    akida = build_model(family_inventory("akd1000", 1), publish())
    assert len(of_type(akida, DeviceType.CORE_GROUP)) == 20
    assert len(of_type(akida, DeviceType.NEURON_CORE)) == 80


def test_configured_group_shape_and_edge_groups() -> None:
    # SpiNNaker2's 38x4 mesh in 4x4 groups: 9 full groups and a 2x4 edge group.
    model = build_model(family_inventory("spinnaker2", 1), publish(group=(4, 4)))
    groups = of_type(model, DeviceType.CORE_GROUP)
    assert len(groups) == 10
    extents = sorted(g.extent for g in groups)
    assert extents.count((4, 4)) == 9 and (2, 4) in extents
    edge = next(g for g in groups if g.extent == (2, 4))
    assert edge.origin == (36, 0) and len(edge.cores) == 8
    assert len(model.counter_sets) == 1


def test_group_shape_larger_than_mesh_is_refused() -> None:
    with pytest.raises(DeviceModelError, match=r"coreGroup 16x4 does not fit its 10x8 core mesh"):
        build_model(family_inventory("akd1000", 1), publish(group=(16, 4)))


def test_chip_with_too_many_tiles_is_refused() -> None:
    # 38x4 mesh in 1x2 groups = 76 tiles > 2 sets x 30 tiles.
    with pytest.raises(DeviceModelError, match=r"76 core groups .* at most 2 counter sets of 30 tile counters"):
        build_model(family_inventory("spinnaker2", 1), publish(group=(1, 2)))


def test_too_many_tiles_is_fine_without_counters() -> None:
    model = build_model(family_inventory("spinnaker2", 1), publish(DeviceType.CORE_GROUP, group=(1, 2)))
    assert len(of_type(model, DeviceType.CORE_GROUP)) == 76


def test_long_chip_id_is_refused_with_the_limit() -> None:
    chip = make_chip("loihi2", 0, chip_id="c" * 60)
    with pytest.raises(DeviceModelError, match=r"at most 63"):
        build_model(make_inventory([chip]), publish())


def test_duplicate_chip_ids_are_refused() -> None:
    chips = [make_chip("loihi2", 0, chip_id="x"), make_chip("loihi2", 1, chip_id="x")]
    with pytest.raises(DeviceModelError, match="appears twice"):
        build_model(make_inventory(chips), publish())


def test_mixed_pci_reporting_in_a_family_is_refused() -> None:
    chips = [make_chip("akd1000", 0), replace(make_chip("akd1000", 1), pci_bus_id=None)]
    with pytest.raises(DeviceModelError, match="pciBusID"):
        build_model(make_inventory(chips), publish())


def test_publication_order_cores_groups_chips_then_shared() -> None:
    model = build_model(family_inventory("loihi2", 2), publish())
    types = [d.type for d in model.devices]
    firsts = [types.index(t) for t in (DeviceType.NEURON_CORE, DeviceType.CORE_GROUP, DeviceType.CHIP)]
    assert firsts == sorted(firsts)
    assert types == sorted(
        types,
        key=[
            DeviceType.NEURON_CORE,
            DeviceType.CORE_GROUP,
            DeviceType.CHIP,
            DeviceType.SPIKE_ROUTER,
            DeviceType.EVENT_QUEUE,
        ].index,
    )
    cores = of_type(model, DeviceType.NEURON_CORE)
    # chip 0 first, its cores tile by tile from tile 0 (core indices are tile-major)
    assert [d.cores[0].index for d in cores[:16]] == list(range(16))
    assert cores[0].chip.id == model.devices[0].chip.id
    groups = [d for d in of_type(model, DeviceType.CORE_GROUP) if d.chip.id == cores[0].chip.id]
    assert groups[0].name.endswith("group-7") and groups[-1].name.endswith("group-0")
    assert all(d.shared for d in model.devices if d.type in (DeviceType.SPIKE_ROUTER, DeviceType.EVENT_QUEUE))
    assert not any(d.shared for d in model.devices if d.type in (DeviceType.CHIP, DeviceType.NEURON_CORE))


def test_order_and_names_do_not_depend_on_health() -> None:
    healthy = build_model(family_inventory("loihi2", 2), publish())
    chips = [make_chip("loihi2", 0, hops=0), make_chip("loihi2", 1, hops=1, healthy=False)]
    sick = build_model(make_inventory(chips), publish())
    assert [d.name for d in healthy.devices] == [d.name for d in sick.devices]
    assert {d.chip.id for d in sick.devices if d.tainted} == {chips[1].id}


def test_by_name_and_names_are_dns_labels() -> None:
    model = build_model(family_inventory("akd1000", 1), publish())
    for d in model.devices:
        assert model.by_name(d.name) is d
        assert len(d.name) <= 63 and d.name == d.name.lower()
    assert model.by_name("nope") is None
    assert len({d.name for d in model.devices}) == len(model.devices)


def test_chip_covers_all_usable_cores_and_shared_devices_none() -> None:
    inv = make_inventory([make_chip("loihi2", 0, fused=(3,))])
    model = build_model(inv, publish())
    (chip,) = of_type(model, DeviceType.CHIP)
    assert len(chip.cores) == 127
    assert chip.extent == (8, 16)
    for d in of_type(model, DeviceType.SPIKE_ROUTER) + of_type(model, DeviceType.EVENT_QUEUE):
        assert d.cores == ()
    assert [d.queue.index for d in of_type(model, DeviceType.EVENT_QUEUE) if d.queue] == [0, 1, 2]


# ---- topology ------------------------------------------------------------------------------------


def test_xy_hops() -> None:
    assert core_hops((0, 0), (3, 4)) == 7
    assert core_hops((5, 1), (5, 1)) == 0
    assert chip_hops((0, 0, 0), (1, 1, 1)) == 3
    chip = make_chip("loihi2", 0, hops=2)
    assert hops_to_host(chip) == 2
    assert hops_to_host(chip, (4, 8)) == 14
    other = make_chip("loihi2", 1, hops=3, mesh_pos=(1, 1, 0))
    assert hops_between(chip, (1, 1), chip, (2, 3)) == 3
    assert hops_between(chip, (1, 1), other, (0, 2)) == 2 + 2 + 2
