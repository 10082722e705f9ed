"""Module and Parameter: how layers hold their weights and find each other.

A Module's parameters are found by walking its attributes in the order they were assigned
(Python dicts keep insertion order), so a layer that sets ``self.weight`` before
``self.bias`` lists them in that order, and a model lists its layers in forward order,
exactly as PyTorch does. Sub-modules may be held directly or in a list/tuple.

Buffers (``register_buffer``) are numpy arrays a module saves and loads with its parameters
but that no optimizer trains: a pruning mask, a quantized weight and its scale.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .tensor import Tensor

__all__ = ["Parameter", "Module", "RemovableHandle"]


class RemovableHandle:
    """What ``register_*_hook`` returns: ``remove()`` unregisters the hook (twice is fine)."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self.hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class Parameter(Tensor):
    """A Tensor that is a learnable weight of a Module: it always requires a gradient."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


class Module:
    """Base class of every layer and model: subclasses define ``forward``."""

    training = True  # class default, so a subclass that skips super().__init__() still works

    def __init__(self):
        self.training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        """Run ``forward``, and around it any hooks registered on this module."""
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*args, **kwargs)
        for hook in list(self._forward_pre_hooks.values()):
            replaced = hook(self, args)
            if replaced is not None:
                args = replaced if isinstance(replaced, tuple) else (replaced,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, output)
            if replaced is not None:
                output = replaced
        return output

    # ------------------------------------------------------------ hooks
    _forward_pre_hooks: dict = {}  # read-only class defaults: no hooks until one is registered
    _forward_hooks: dict = {}

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """Call ``hook(module, args)`` before every ``forward``; a non-None result replaces
        the positional arguments (a tuple, or a single value). Returns a handle whose
        ``remove()`` unregisters it (as in PyTorch)."""
        return self._add_hook("_forward_pre_hooks", hook)

    def register_forward_hook(self, hook) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every ``forward``; a non-None result
        replaces the output. Returns a handle whose ``remove()`` unregisters it."""
        return self._add_hook("_forward_hooks", hook)

    def _add_hook(self, attribute: str, hook) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"a hook must be callable; got {type(hook).__name__}")
        if attribute not in self.__dict__:  # the first hook: an own dict, not the class's
            setattr(self, attribute, OrderedDict())
        hooks = getattr(self, attribute)
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------------ traversal
    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def children(self):
        return [child for _, child in self.named_children()]

    def modules(self):
        """This module and every module inside it, depth first."""
        found = [self]
        for child in self.children():
            found.extend(child.modules())
        return found

    def named_parameters(self, prefix: str = ""):
        """(dotted name, Parameter) pairs in assignment order, each Parameter once."""
        seen = set()
        for name, value in vars(self).items():
            items = [(name, value)]
            if isinstance(value, (list, tuple)):
                items = [(f"{name}.{i}", v) for i, v in enumerate(value)]
            for item_name, item in items:
                full = prefix + item_name
                if isinstance(item, Parameter):
                    if id(item) not in seen:
                        seen.add(id(item))
                        yield full, item
                elif isinstance(item, Module):
                    for sub_name, p in item.named_parameters(full + "."):
                        if id(p) not in seen:
                            seen.add(id(p))
                            yield sub_name, p

    def parameters(self) -> list:
        return [p for _, p in self.named_parameters()]

    # ------------------------------------------------------------ buffers
    _buffer_names: tuple = ()  # read-only class default: no buffers until one is registered

    def register_buffer(self, name: str, array) -> None:
        """Keep ``array`` (a numpy array, not copied) as ``self.<name>``, saved and loaded by
        ``state_dict``/``load_state_dict`` but not a parameter: no gradient, no optimizer.
        Assigning ``self.<name>`` later replaces the buffer's value; ``del self.<name>``
        unregisters it."""
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"a buffer name must be an identifier without dots; got {name!r}")
        existing = vars(self).get(name)
        if name not in self._buffer_names and isinstance(existing, (Tensor, Module)):
            raise KeyError(f"cannot register buffer {name!r}: {type(self).__name__}.{name} is "
                           f"already a {type(existing).__name__}")
        if isinstance(array, Tensor):
            raise TypeError(f"buffer {name!r} must be a numpy array; got a "
                            f"{type(array).__name__} (pass tensor.data)")
        if "_buffer_names" not in self.__dict__:  # the first buffer: an own list
            self._buffer_names = []
        if name not in self._buffer_names:
            self._buffer_names.append(name)
        setattr(self, name, np.asarray(array))

    def __delattr__(self, name: str) -> None:
        super().__delattr__(name)
        if name in self._buffer_names:
            self._buffer_names.remove(name)

    def named_buffers(self, prefix: str = ""):
        """(dotted name, array) pairs: this module's buffers in registration order, then
        those of each child in turn; each array once."""
        seen = set()
        own = ((prefix + name, getattr(self, name)) for name in self._buffer_names)
        children = (item for child_name, child in self.named_children()
                    for item in child.named_buffers(f"{prefix}{child_name}."))
        for name, array in (*own, *children):
            if id(array) not in seen:
                seen.add(id(array))
                yield name, array

    def buffers(self) -> list:
        return [b for _, b in self.named_buffers()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # ------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        """Set the training flag on this module and every sub-module (Dropout reads it)."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # ------------------------------------------------------------ state
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """A copy of every parameter's values, by dotted name, then of every buffer (a model
        without buffers saves exactly its parameters)."""
        params = ((name, p.data.copy()) for name, p in self.named_parameters())
        buffers = ((name, np.array(b, copy=True)) for name, b in self.named_buffers())
        return OrderedDict((*params, *buffers))

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy values into the existing parameters (in place, so optimizers keep them).

        Buffers are loaded the same way, in place. Everything is checked before anything is
        written: missing or unexpected names (when ``strict``), values that are not real
        numbers (a string array, say) and shape mismatches raise with the names, dtypes and
        shapes involved, and leave the model as it was.
        """
        own = {name: p.data for name, p in self.named_parameters()}
        own.update(self.named_buffers())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        values = {}
        for name, p in own.items():
            if name not in state:
                continue
            value = state[name].data if isinstance(state[name], Tensor) else state[name]
            value = np.asarray(value)
            if value.dtype.kind not in "biuf":
                raise TypeError(f"load_state_dict: '{name}' has dtype {value.dtype} in the state "
                                f"dict; the model needs real numbers ({p.dtype})")
            if value.shape != p.shape:
                raise ValueError(f"load_state_dict: '{name}' has shape {value.shape} "
                                 f"in the state dict but {p.shape} in the model")
            values[name] = value
        for name, value in values.items():
            own[name][...] = value

    def __repr__(self) -> str:
        children = self.named_children()
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}({extra}\n" + "\n".join(lines) + "\n)"

    def extra_repr(self) -> str:
        return ""
