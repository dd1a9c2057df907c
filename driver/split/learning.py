"""Split learning of a spiking network between a client (edge) and a server, over TCP.

The client holds the data and the first LIF layer up to the cut; the server holds the rest of the
network and the loss. Per step the client sends the cut layer's spikes (packed bits) and the labels,
the server answers with the loss and dLoss/dspikes at the cut, and both update their own weights
(:mod:`snn.py`). Neither side ever sees the other's weights: only spikes go forward and gradients
back, which is what makes split learning worth running on separate devices and nodes.

Each side reads the SNN devices its claim gave it from the environment CDI injected
(``SNN_DRA_DEVICE_<D>`` and the ``SNN_DRA_<D>_*`` attributes, see ``prepare.py``) and reports them; the
arithmetic runs on the host CPU in numpy (there is no public SDK for these chips), so the devices are
what the scheduler reserved for the stage, and the spike traffic per step is what would cross the link.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TextIO

import numpy as np

from snn_dra.driver.split.snn import Adam, LIFLayer, Readout, spike_dataset
from snn_dra.driver.split.wire import WireError, pack_spikes, receive, send, unpack_spikes

DEVICE_PREFIX: Final = "SNN_DRA_DEVICE_"
CONNECT_TIMEOUT_S: Final = 120.0


class LearnError(RuntimeError):
    """The run cannot start or continue; the message says which side, what happened and what to do."""


@dataclass(frozen=True, slots=True)
class StageDevice:
    """One device of this side's claim, as the container environment describes it."""

    name: str
    type: str
    chip: str
    stage: str
    cores: str


@dataclass(frozen=True, slots=True)
class LearnConfig:
    steps: int = 60
    batch: int = 32
    seed: int = 7
    channels: int = 32
    cut: int = 64
    """Neurons of the cut layer: the spikes that cross the link."""
    hidden: int = 32
    classes: int = 4
    timesteps: int = 20
    samples: int = 2048
    lr: float = 0.01


def devices_from_env(env: Mapping[str, str]) -> list[StageDevice]:
    out = []
    for key, name in sorted(env.items()):
        if not key.startswith(DEVICE_PREFIX):
            continue
        p = f"SNN_DRA_{key[len(DEVICE_PREFIX) :]}_"
        out.append(
            StageDevice(
                name=name,
                type=env.get(p + "TYPE", "?"),
                chip=env.get(p + "CHIP_ID", "?"),
                stage=env.get(p + "SPLIT_STAGE_INDEX", "-"),
                cores=env.get(p + "CORES", ""),
            )
        )
    return out


def describe(devices: list[StageDevice]) -> str:
    return ", ".join(f"{d.name} ({d.type} on chip {d.chip}, stage {d.stage})" for d in devices) or "none"


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise LearnError(f"address {text!r} is not HOST:PORT (e.g. 127.0.0.1:7070)")
    return host or "0.0.0.0", int(port)


def _say(out: TextIO, line: str) -> None:
    out.write(line + "\n")
    out.flush()


def serve(
    listen: str,
    config: LearnConfig,
    devices: list[StageDevice],
    out: TextIO,
    *,
    accept_timeout: float = 300.0,
    on_listening: Callable[[int], None] | None = None,
) -> list[float]:
    """Run the server side for one client; returns the losses per step."""
    host, port = parse_address(listen)
    rng = np.random.default_rng(config.seed + 1)
    layer = LIFLayer.create(config.cut, config.hidden, rng)
    layer.optimizer = Adam(lr=config.lr)
    readout = Readout.create(config.hidden, config.classes, rng)
    readout.optimizer = Adam(lr=config.lr)
    losses: list[float] = []
    with socket.create_server((host, port), reuse_port=False) as server:
        bound = server.getsockname()[1]
        _say(out, f"server: listening on {host}:{bound}; devices: {describe(devices)}")
        if on_listening is not None:
            on_listening(bound)
        server.settimeout(accept_timeout)
        try:
            conn, peer = server.accept()
        except TimeoutError:
            raise LearnError(f"server: no client connected within {accept_timeout:.0f} s") from None
    with conn:
        conn.settimeout(None)
        header, _ = receive(conn)
        if header.get("type") != "hello" or header.get("cut") != config.cut:
            raise LearnError(f"server: client {peer[0]} sent {header!r}; expected hello with cut={config.cut}")
        _say(out, f"server: client {peer[0]} connected; its devices: {header.get('devices') or 'none'}")
        send(conn, {"type": "ready", "devices": describe(devices)})
        while True:
            header, arrays = receive(conn)
            if header.get("type") == "done":
                send(conn, {"type": "bye"})
                break
            spikes = unpack_spikes(arrays["spikes"], config.cut)
            labels = arrays["labels"].astype(np.int64)
            loss, accuracy, grad = readout.loss(layer.forward(spikes), labels)
            grad_cut = layer.backward(grad)
            losses.append(loss)
            send(conn, {"type": "gradient", "loss": loss, "accuracy": accuracy}, grad=grad_cut.astype(np.float32))
            _say(out, f"server: step {header.get('step')}: loss {loss:.4f} accuracy {accuracy:.2f}")
    _say(out, f"server: done after {len(losses)} steps")
    return losses


def _connect(address: str, timeout: float) -> socket.socket:
    host, port = parse_address(address)
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            return socket.create_connection((host, port), timeout=10)
        except OSError as e:
            if time.monotonic() > deadline:
                raise LearnError(f"client: cannot reach the server at {address} within {timeout:.0f} s: {e}") from None
            time.sleep(delay)  # the server pod may still be starting: retry with backoff
            delay = min(delay * 2, 2.0)


def train_client(
    server: str, config: LearnConfig, devices: list[StageDevice], out: TextIO, *, connect_timeout: float = 120.0
) -> list[float]:
    """Run the client side; returns the losses the server reported per step."""
    spikes_in, labels = spike_dataset(
        config.samples, channels=config.channels, classes=config.classes, steps=config.timesteps, seed=config.seed
    )
    rng = np.random.default_rng(config.seed)
    layer = LIFLayer.create(config.channels, config.cut, rng)
    layer.optimizer = Adam(lr=config.lr)
    losses: list[float] = []
    _say(out, f"client: devices: {describe(devices)}")
    with contextlib.closing(_connect(server, connect_timeout)) as conn:
        conn.settimeout(None)
        send(conn, {"type": "hello", "cut": config.cut, "devices": describe(devices)})
        header, _ = receive(conn)
        if header.get("type") != "ready":
            raise LearnError(f"client: server answered {header!r} instead of ready")
        _say(out, f"client: connected to {server}; server devices: {header.get('devices')}")
        for step in range(1, config.steps + 1):
            batch = rng.integers(0, config.samples, size=config.batch)
            cut = layer.forward(spikes_in[batch].astype(np.float64))
            sent = send(conn, {"type": "forward", "step": step}, spikes=pack_spikes(cut), labels=labels[batch])
            reply, arrays = receive(conn)
            if reply.get("type") != "gradient":
                raise WireError(f"expected a gradient, got {reply!r}")
            layer.backward(arrays["grad"].astype(np.float64))
            losses.append(float(reply["loss"]))
            _say(
                out,
                f"client: step {step}/{config.steps}: loss {reply['loss']:.4f} accuracy {reply['accuracy']:.2f} "
                f"spikes_sent {int(cut.sum())} bytes_sent {sent}",
            )
        send(conn, {"type": "done"})
        receive(conn)
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    _say(out, f"client: done: loss {first:.4f} -> {last:.4f} over {config.steps} steps")
    return losses
