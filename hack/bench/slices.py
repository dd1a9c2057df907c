"""Slice benchmark at Hala Point scale: model, slices and validation for 1,152 Loihi-2-like chips.

Hala Point has 1,152 Loihi 2 chips and 140,544 usable neuron cores, i.e. 122 of 128 per chip. This
builds that inventory directly (no backend: the point is the model and slice path), publishes every
level (chip, coreGroup, neuronCore, spikeRouter, eventQueue), validates every slice semantically
(``validate_resource_slice`` for 1.37 plus ``validate_pool``) and a sample structurally with
kubernetes-validate (strict, 1.37; it takes tens of milliseconds per slice, so all of them would
dominate the run), then prints the time of each stage and the peak RSS.

    /tmp/v/bin/python hack/bench/slices.py [--chips N] [--sample K]

The last line is ``slices-bench: chips=<n> devices=<n> slices=<n> seconds=<s> peak_rss_mib=<m>``,
where seconds covers model + slices + semantic validation (the publish path), not the schema sample.
"""

from __future__ import annotations

import argparse
import resource
import time

import kubernetes_validate

from snn_dra.api.attributes import DeviceType
from snn_dra.api.nodeconfig import PublishConfig
from snn_dra.driver.backends.base import Access, Board, Chip, Core, EventQueue, Inventory, Router
from snn_dra.driver.backends.families import LOIHI2
from snn_dra.driver.model import build_model
from snn_dra.driver.slices import build_slices, device_counts
from snn_dra.driver.validation.resourceslice import validate_pool, validate_resource_slice

CHIPS_PER_BOARD = 8
FUSED_PER_CHIP = 6  # 128 - 122 usable


def hala_point(chips: int) -> Inventory:
    spec = LOIHI2
    positions = [spec.core_position(i) for i in range(spec.nominal_cores)]
    side = max(1, round((chips / 8) ** 0.5))
    boards = []
    for b in range(-(-chips // CHIPS_PER_BOARD)):
        board_chips = []
        for k in range(min(CHIPS_PER_BOARD, chips - b * CHIPS_PER_BOARD)):
            n = b * CHIPS_PER_BOARD + k
            fused = {(n * 7 + j * 21) % spec.nominal_cores for j in range(FUSED_PER_CHIP)}
            cores = tuple(
                Core(i, *positions[i], spec.neurons_per_core, spec.synapse_memory_per_core, spec.spike_throughput_keps)
                for i in range(spec.nominal_cores)
                if i not in fused
            )
            mesh = (n % side, (n // side) % side, n // (side * side))
            board_chips.append(
                Chip(
                    index=k,
                    id=f"hp-{n:04d}",
                    serial=f"L2-{n:06d}",
                    family=spec.family,
                    model=spec.model,
                    board_id=f"board-{b:03d}",
                    system_id="hala-point",
                    mesh=mesh,
                    core_mesh=spec.core_mesh,
                    nominal_cores=spec.nominal_cores,
                    cores=cores,
                    natural_group=spec.natural_group,
                    router=Router(spec.router_event_throughput_meps, *spec.core_mesh),
                    event_queues=tuple(
                        EventQueue(q, spec.queue_depth, spec.queue_event_throughput_meps)
                        for q in range(spec.event_queues)
                    ),
                    hops_to_host=sum(mesh),
                    firmware_version="1.2.0",
                    access=Access(),
                )
            )
        boards.append(Board(f"board-{b:03d}", "hala-point-chassis", spec.family, tuple(board_chips)))
    return Inventory(node_name="hala-point", system_id="hala-point", boards=tuple(boards))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=1152)
    parser.add_argument("--sample", type=int, default=24, help="slices checked with kubernetes-validate")
    args = parser.parse_args()

    t0 = time.perf_counter()
    inventory = hala_point(args.chips)
    t1 = time.perf_counter()
    publish = PublishConfig(levels=list(DeviceType))
    model = build_model(inventory, publish)
    t2 = time.perf_counter()
    slices = build_slices(model, "hala-point")
    t3 = time.perf_counter()
    errors = [e for s in slices for e in validate_resource_slice(s, None, "1.37")] + validate_pool(slices)
    t4 = time.perf_counter()
    if errors:
        raise SystemExit(f"{len(errors)} validation errors, first: {errors[0]}")
    step = max(1, len(slices) // max(1, args.sample))
    sample = [*slices[::step][: args.sample], slices[-1]]
    for s in sample:
        kubernetes_validate.validate(s, "1.37", strict=True)
    t5 = time.perf_counter()

    counts = device_counts(slices)
    n_devices = sum(counts.values())
    cores = sum(len(c.cores) for c in inventory.chips)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(f"inventory: {len(inventory.chips)} chips, {cores} usable cores ({t1 - t0:.2f} s to build)")
    print(f"model:     {len(model.devices)} devices, {len(model.counter_sets)} counter sets in {t2 - t1:.2f} s")
    print(f"slices:    {len(slices)} slices ({', '.join(f'{k}={v}' for k, v in counts.items())}) in {t3 - t2:.2f} s")
    print(f"semantic:  every slice + pool, 0 errors in {t4 - t3:.2f} s")
    print(f"schema:    {len(sample)} sampled slices strict 1.37 in {t5 - t4:.2f} s")
    print(
        f"slices-bench: chips={len(inventory.chips)} devices={n_devices} slices={len(slices)} "
        f"seconds={t4 - t1:.2f} peak_rss_mib={peak_mib:.0f}"
    )


if __name__ == "__main__":
    main()
