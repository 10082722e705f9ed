"""Pruning (chapter 16): zero weights through masks that persist, as ``torch.nn.utils.prune``.

Pruning the parameter ``weight`` of a module turns it into three attributes:

* ``weight_orig``: the Parameter itself (the same object, so an optimizer built earlier
  keeps training it);
* ``weight_mask``: a buffer of 0s and 1s of the same shape, saved in the state dict;
* ``weight``: a plain Tensor, ``weight_orig * weight_mask``, recomputed by a forward pre-hook
  before every forward. The layer's forward reads it as before, and the product sends the
  gradient back to ``weight_orig`` times the mask: a pruned weight gets a zero gradient and
  its effective value stays 0 however long the model trains.

``remove(module, "weight")`` makes it permanent: ``weight`` becomes the Parameter again,
holding ``weight_orig * weight_mask``, and the mask and hook are gone.

``amount`` is a fraction in [0, 1) of the weights (rounded to the nearest count) or an int
count. Pruning a parameter that is already pruned is refused unless ``iterative=True``: then
the amount counts the weights still unpruned, and the new mask is multiplied into the old
one (what PyTorch does when a parameter is pruned again).
"""
from __future__ import annotations

import math

import numpy as np

from .checks import is_int, is_real
from .core.module import Module, Parameter

__all__ = ["l1_unstructured", "global_unstructured", "ln_structured", "remove", "is_pruned"]


class _PruningHook:
    """The forward pre-hook that recomputes ``<name> = <name>_orig * <name>_mask``."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, module: Module, args) -> None:
        _apply_mask(module, self.name)


def _apply_mask(module: Module, name: str) -> None:
    """Set ``module.<name>`` to ``<name>_orig * <name>_mask``: the pruned weight used by the
    forward pass, through which only the kept entries receive gradients.
    """
    setattr(module, name, getattr(module, name + "_orig") * getattr(module, name + "_mask"))


def _hook_key(module: Module, name: str):
    """The key of the pruning hook of ``module.<name>``, or None when it is not pruned."""
    for key, hook in module._forward_pre_hooks.items():
        if isinstance(hook, _PruningHook) and hook.name == name:
            return key
    return None


def is_pruned(module: Module) -> bool:
    """Whether any parameter of ``module`` or of a module inside it is pruned."""
    return any(isinstance(hook, _PruningHook)
               for m in module.modules() for hook in m._forward_pre_hooks.values())


def _target(module: Module, name: str, iterative: bool) -> tuple:
    """``(parameter, current mask)`` of ``module.<name>``: an all-ones mask if it is not
    pruned yet; refuses a second pruning unless ``iterative``."""
    if not isinstance(module, Module):
        raise TypeError(f"prune: expected a Module; got {type(module).__name__}")
    if _hook_key(module, name) is not None:
        if not iterative:
            raise ValueError(
                f"{type(module).__name__}.{name} is already pruned; call prune.remove(module, "
                f"{name!r}) first to make that permanent, or pass iterative=True to prune "
                f"further (the amount then counts the weights still unpruned)")
        return getattr(module, name + "_orig"), getattr(module, name + "_mask")
    param = getattr(module, name, None)
    if not isinstance(param, Parameter):
        names = ", ".join(n for n, _ in module.named_parameters()) or "none"
        raise ValueError(f"{type(module).__name__} has no parameter {name!r} (its parameters: "
                         f"{names})")
    return param, np.ones_like(param.data)


def _count(amount, alive: int) -> int:
    """How many of ``alive`` weights (or channels) ``amount`` prunes."""
    if is_int(amount):
        if not 0 <= amount <= alive:
            raise ValueError(f"prune: amount={amount} weights is more than the {alive} left "
                             f"to prune (or negative)")
        return int(amount)
    if not is_real(amount):
        raise TypeError(f"prune: amount must be a fraction in [0, 1) or an int count; "
                        f"got {amount!r}")
    if not 0 <= amount < 1:
        raise ValueError(f"prune: amount must be a fraction in [0, 1) (or an int count); "
                         f"got {amount}")
    return round(amount * alive)


def _keep_largest(scores: np.ndarray, alive: np.ndarray, amount) -> np.ndarray:
    """A 0/1 mask that drops the ``amount`` smallest ``scores`` among the ``alive`` entries
    (ties broken by position) and keeps everything else."""
    candidates = np.flatnonzero(alive)
    k = _count(amount, candidates.size)
    keep = np.ones(scores.size, dtype=bool)
    drop = candidates[np.argsort(scores.reshape(-1)[candidates], kind="stable")[:k]]
    keep[drop] = False
    return keep.reshape(scores.shape)


def _install(module: Module, name: str, param: Parameter, mask: np.ndarray) -> None:
    """Set ``<name>_orig``, the ``<name>_mask`` buffer and the hook (the hook only once)."""
    mask = mask.astype(param.data.dtype)
    if _hook_key(module, name) is None:
        setattr(module, name + "_orig", param)
        module.register_forward_pre_hook(_PruningHook(name))
    module.register_buffer(name + "_mask", mask)
    _apply_mask(module, name)  # `name` keeps its place among the attributes, now a Tensor


def l1_unstructured(module: Module, name: str = "weight", amount=0.5, *,
                    iterative: bool = False) -> Module:
    """Prune the ``amount`` entries of ``module.<name>`` with the smallest magnitude.
    Returns ``module``."""
    param, mask = _target(module, name, iterative)
    new = _keep_largest(np.abs(param.data), mask != 0, amount)
    _install(module, name, param, mask * new)
    return module


def global_unstructured(parameters, amount, *, iterative: bool = False) -> None:
    """Prune the ``amount`` smallest-magnitude entries among all the ``(module, name)``
    pairs of ``parameters`` taken together: layers of small weights lose more."""
    parameters = list(parameters)
    if not parameters:
        raise ValueError("global_unstructured: no parameters given")
    if len({(id(m), n) for m, n in parameters}) != len(parameters):
        raise ValueError("global_unstructured: a (module, name) pair appears twice")
    targets = [_target(module, name, iterative) for module, name in parameters]
    scores = np.concatenate([np.abs(p.data).reshape(-1) for p, _ in targets])
    alive = np.concatenate([(m != 0).reshape(-1) for _, m in targets])
    keep = _keep_largest(scores, alive, amount)
    start = 0
    for (module, name), (param, mask) in zip(parameters, targets):
        piece = keep[start:start + param.data.size].reshape(param.shape)
        _install(module, name, param, mask * piece)
        start += param.data.size


def ln_structured(module: Module, name: str = "weight", amount=0.5, n=2, dim: int = 0, *,
                  iterative: bool = False) -> Module:
    """Prune whole slices along ``dim`` (``dim=0``: output neurons of a Linear, filters of a
    Conv2d), the ``amount`` with the smallest L``n`` norm. The mask zeroes them; the layer
    keeps its shape (``tinytorch.compress.prune_channels`` really removes them)."""
    param, mask = _target(module, name, iterative)
    if not (is_real(n) and n > 0):
        raise ValueError(f"ln_structured: n must be a positive number or math.inf; got {n!r}")
    if not is_int(dim) or not -param.ndim <= dim < param.ndim:
        raise ValueError(f"ln_structured: dim {dim!r} is out of range for {name} of shape "
                         f"{param.shape}")
    dim = dim % param.ndim
    slices = np.moveaxis(param.data * mask, dim, 0).reshape(param.shape[dim], -1)
    alive = np.moveaxis(mask, dim, 0).reshape(param.shape[dim], -1).any(axis=1)
    magnitudes = np.abs(slices.astype(np.float64))
    norms = (magnitudes.max(axis=1) if n == math.inf
             else (magnitudes ** n).sum(axis=1) ** (1 / n))
    keep = _keep_largest(norms, alive, amount)
    shape = [1] * param.ndim
    shape[dim] = -1
    _install(module, name, param, mask * keep.reshape(shape))
    return module


def remove(module: Module, name: str = "weight") -> Module:
    """Make the pruning of ``module.<name>`` permanent: ``<name>`` is the Parameter again
    (the same object as ``<name>_orig``, now holding the masked values), with no mask
    buffer and no hook. Returns ``module``."""
    key = _hook_key(module, name)
    if key is None:
        raise ValueError(f"{type(module).__name__}.{name} is not pruned: nothing to remove")
    param, mask = getattr(module, name + "_orig"), getattr(module, name + "_mask")
    param.data *= mask                      # in place: optimizers still hold this Parameter
    del module._forward_pre_hooks[key]
    delattr(module, name + "_orig")
    delattr(module, name + "_mask")          # unregisters the buffer
    setattr(module, name, param)
    return module
