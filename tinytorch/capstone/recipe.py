"""The learner's part of the capstone (chapter 20): an optimisation recipe that meets a budget.

The reference recipe combines three earlier chapters:

1. **structured pruning** (Chapter 16, ``compress.prune_channels``): remove whole output
   channels of the largest layer, step by step, until the model's int8 copy fits
   ``budget["max_bytes"]``; unlike a mask, this really shrinks the arrays;
2. **fine-tuning** (Chapters 7 and 8): a few epochs of Adam on the training split win back
   the accuracy the removed channels cost;
3. **int8 quantization per channel** (Chapter 15, ``quantize_model``): about 4x fewer bytes
   for every weight.

Its output goes to :func:`tinytorch.capstone.write_submission` and is judged by
:func:`tinytorch.capstone.score` on the held-out split, which the recipe never sees.
"""
from __future__ import annotations

import copy

import numpy as np

from ..compress import _PER_CHANNEL, prune_channels
from ..core.layers import Linear, Sequential
from ..core.losses import CrossEntropyLoss
from ..core.module import Module
from ..core.spatial import Conv2d
from ..optim import Adam
from ..quantization import model_nbytes, quantize_model

__all__ = ["fine_tune", "prunable_layers", "shrink", "optimise"]


def fine_tune(model: Module, train: tuple, epochs: int, lr: float = 1e-3, batch_size: int = 32,
              seed: int = 0) -> Module:
    """Train ``model`` in place on ``train = (X, y)``: ``epochs`` passes of Adam (``lr``) on
    the cross-entropy, in batches of ``batch_size`` taken in the order of
    ``np.random.default_rng(seed).permutation`` (one permutation per epoch). Return ``model``
    in eval mode; ``epochs=0`` leaves its weights unchanged."""
    X, y = train
    optimizer, loss_fn = Adam(model.parameters(), lr=lr), CrossEntropyLoss()
    order_rng = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        order = order_rng.permutation(len(X))
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            loss_fn(model(X[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def prunable_layers(model: Sequential) -> list[int]:
    """Indices of the Linear and Conv2d layers whose outputs feed, through per-channel layers
    only, another Linear or Conv2d: the ones ``prune_channels`` can narrow."""
    layers, found = model.layers, []
    for index, layer in enumerate(layers):
        if not isinstance(layer, (Linear, Conv2d)):
            continue
        after = next((j for j in range(index + 1, len(layers))
                      if not isinstance(layers[j], _PER_CHANNEL)), None)
        if after is not None and isinstance(layers[after], (Linear, Conv2d)):
            found.append(index)
    return found


def _weights_touched(model: Sequential, index: int) -> int:
    """Weights of layer ``index`` and of the next Linear or Conv2d, which loses inputs."""
    layers = model.layers
    after = next(j for j in range(index + 1, len(layers))
                 if isinstance(layers[j], (Linear, Conv2d)))
    return layers[index].weight.data.size + layers[after].weight.data.size


def shrink(model: Sequential, fraction: float = 0.25) -> Sequential:
    """A copy of ``model`` in which the prunable layer (:func:`prunable_layers`) touching the
    most weights, its own and those of the layer after it, has lost ``fraction`` of its output
    channels (at least one, by ``compress.prune_channels``: smallest L2 norm first). Raises
    ValueError when no layer can lose a channel and keep one."""
    candidates = [i for i in prunable_layers(model)
                  if model.layers[i].weight.shape[0] > 1]
    if not candidates:
        raise ValueError("shrink: no layer has an output channel left to remove")
    index = max(candidates, key=lambda i: _weights_touched(model, i))
    outputs = model.layers[index].weight.shape[0]
    return prune_channels(model, index, max(1, min(outputs - 1, round(fraction * outputs))))


def optimise(model: Sequential, budget: dict, train: tuple, *, bits: int = 8,
             step: float = 0.25, epochs: int = 3, lr: float = 1e-3,
             seed: int = 0) -> tuple[Module, dict]:
    """Make the trained ``model`` fit ``budget["max_bytes"]``; ``model`` is not changed.

    While the ``bits``-bit per-channel quantized copy of the network takes more than
    ``budget["max_bytes"]`` (``model_nbytes``), :func:`shrink` it by ``step``; then
    :func:`fine_tune` the shrunk float network for ``epochs`` on ``train`` (``lr``, ``seed``)
    when it was shrunk, and quantize it (``quantize_model``, per channel, affine, no
    calibration). Returns ``(quantized model, recipe)``, the recipe being the dict
    ``write_submission`` records: ``{"quantization": {"bits", "per_channel", "scheme"},
    "pruning": {"method": "channels", "amount": fraction of the weights removed} or None,
    "fine_tune_epochs": epochs run}``. Raises ValueError when no shrinking fits.
    """
    candidate = copy.deepcopy(model)
    before = sum(p.data.size for p in model.parameters())
    while model_nbytes(quantize_model(candidate, bits=bits)) > budget["max_bytes"]:
        candidate = shrink(candidate, step)
    after = sum(p.data.size for p in candidate.parameters())
    shrunk = after < before
    if shrunk:
        fine_tune(candidate, train, epochs, lr=lr, seed=seed)
    quantized = quantize_model(candidate.eval(), bits=bits, per_channel=True)
    recipe = {"quantization": {"bits": bits, "per_channel": True, "scheme": "affine"},
              "pruning": ({"method": "channels", "amount": round(1 - after / before, 4)}
                          if shrunk else None),
              "fine_tune_epochs": epochs if shrunk else 0}
    return quantized.eval(), recipe
