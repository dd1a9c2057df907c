"""A small spiking network in numpy: leaky integrate-and-fire layers trained with surrogate gradients.

The split-learning workload needs a model whose cut layer really emits spikes (binary events, the thing
a neuromorphic link carries) and whose gradients really flow back through time, not a stand-in. Each
:class:`LIFLayer` integrates ``u[t] = beta * u[t-1] + x[t] @ W - threshold * s[t-1]`` and fires
``s[t] = u[t] >= threshold``. The step has no derivative, so backpropagation through time uses the
fast-sigmoid surrogate ``ds/du = 1 / (1 + k |u - threshold|)^2`` (Zenke & Ganguli's SuperSpike, as in
snnTorch); the reset term is treated as a constant, the usual choice. :class:`Adam` updates the weights.

:func:`spike_dataset` generates the data: each class is a fixed pattern of firing probabilities over the
input channels, and a sample is Bernoulli spikes drawn from its class pattern at every timestep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
BETA: Final = 0.9
THRESHOLD: Final = 1.0
SURROGATE_SLOPE: Final = 5.0


def spike_dataset(
    samples: int, *, channels: int, classes: int, steps: int, seed: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """(spikes [samples, steps, channels] of 0/1, labels [samples]) from per-class firing patterns."""
    rng = np.random.default_rng(seed)
    patterns = rng.uniform(0.02, 0.15, size=(classes, channels))
    for c in range(classes):  # each class drives its own block of channels hard
        block = rng.choice(channels, size=max(1, channels // classes), replace=False)
        patterns[c, block] = rng.uniform(0.25, 0.45, size=block.size)
    labels = rng.integers(0, classes, size=samples)
    spikes = (rng.random((samples, steps, channels)) < patterns[labels][:, None, :]).astype(np.uint8)
    return spikes, labels


@dataclass
class Adam:
    """Adam for one weight matrix."""

    lr: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    _m: Array | None = None
    _v: Array | None = None
    _t: int = 0

    def step(self, weights: Array, grad: Array) -> None:
        if self._m is None or self._v is None:
            self._m, self._v = np.zeros_like(weights), np.zeros_like(weights)
        self._t += 1
        self._m = self.beta1 * self._m + (1 - self.beta1) * grad
        self._v = self.beta2 * self._v + (1 - self.beta2) * grad * grad
        m_hat = self._m / (1 - self.beta1**self._t)
        v_hat = self._v / (1 - self.beta2**self._t)
        weights -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


@dataclass
class LIFLayer:
    """Fully connected LIF layer over time; keeps what the backward pass needs from the last forward."""

    weights: Array
    optimizer: Adam = field(default_factory=Adam)
    _inputs: Array | None = None
    _membrane: Array | None = None

    @classmethod
    def create(cls, inputs: int, outputs: int, rng: np.random.Generator, gain: float = 2.0) -> LIFLayer:
        return cls(rng.normal(0.0, gain / np.sqrt(inputs), size=(inputs, outputs)))

    def forward(self, x: Array) -> Array:
        """Spikes [batch, steps, outputs] (0.0/1.0) for inputs [batch, steps, inputs]."""
        batch, steps, _ = x.shape
        current = x @ self.weights
        u = np.zeros((batch, self.weights.shape[1]))
        s = np.zeros_like(u)
        membrane = np.empty_like(current)
        spikes = np.empty_like(current)
        for t in range(steps):
            u = BETA * u + current[:, t] - THRESHOLD * s
            s = (u >= THRESHOLD).astype(np.float64)
            membrane[:, t], spikes[:, t] = u, s
        self._inputs, self._membrane = x, membrane
        return spikes

    def backward(self, grad_spikes: Array) -> Array:
        """Update the weights from dLoss/dspikes; return dLoss/dinputs (surrogate gradient through time)."""
        if self._inputs is None or self._membrane is None:
            raise RuntimeError("backward() needs a forward() first")
        surrogate = 1.0 / (1.0 + SURROGATE_SLOPE * np.abs(self._membrane - THRESHOLD)) ** 2
        grad_u = np.zeros_like(self._membrane)
        carry = np.zeros(grad_spikes.shape[::2])
        for t in range(grad_spikes.shape[1] - 1, -1, -1):
            carry = grad_spikes[:, t] * surrogate[:, t] + BETA * carry
            grad_u[:, t] = carry
        grad_w = np.einsum("bti,bto->io", self._inputs, grad_u)
        grad_x: Array = grad_u @ self.weights.T
        self.optimizer.step(self.weights, grad_w)
        return grad_x


@dataclass
class Readout:
    """Linear readout of spike counts with softmax cross-entropy."""

    weights: Array
    optimizer: Adam = field(default_factory=Adam)
    _rates: Array | None = None

    @classmethod
    def create(cls, inputs: int, classes: int, rng: np.random.Generator) -> Readout:
        return cls(rng.normal(0.0, 1.0 / np.sqrt(inputs), size=(inputs, classes)))

    def loss(self, spikes: Array, labels: npt.NDArray[np.int64]) -> tuple[float, float, Array]:
        """(loss, accuracy, dLoss/dspikes); also updates the readout weights."""
        steps = spikes.shape[1]
        rates = spikes.mean(axis=1)
        logits = rates @ self.weights * 4.0
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        n = labels.shape[0]
        loss = float(-np.log(probs[np.arange(n), labels] + 1e-12).mean())
        accuracy = float((probs.argmax(axis=1) == labels).mean())
        grad_logits = probs.copy()
        grad_logits[np.arange(n), labels] -= 1.0
        grad_logits *= 4.0 / n
        grad_rates = grad_logits @ self.weights.T
        self.optimizer.step(self.weights, rates.T @ grad_logits)
        grad_spikes = np.repeat(grad_rates[:, None, :] / steps, steps, axis=1)
        return loss, accuracy, grad_spikes
