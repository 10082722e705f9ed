"""Stored PyTorch reference numbers: compute them with PyTorch, compare tinytorch with them.

PyTorch is not a dependency of tinytorch, so this maintainer script runs it once, in an
environment that has both, and writes what it computed to a small fixture,
``tests/fixtures/pytorch_reference.npz``. ``tests/test_pytorch_reference.py`` then compares
tinytorch with that file on every test run, without PyTorch.

Every case below is one small computation written once, for both libraries: ``run(lib,
*leaves)`` gets an adapter ``lib`` (:class:`TorchLib` or :class:`TinyLib`, which map
tinytorch's names onto each library and nothing more) and the case's inputs as tensors of
that library. Either it returns a tensor, whose value is stored with the gradient of
``sum(out * upstream)`` for every floating-point input (``upstream`` is a fixed, non-random
array, :func:`upstream`), or it returns a dict of arrays it computed itself (the optimizers'
trajectories, clipping). Where the two libraries differ in a call (PyTorch's
``MultiheadAttention`` against tinytorch's ``MultiHeadAttention``, class dimension 1 against
the last one) the case says so with ``lib.is_torch``.

The inputs are drawn here with a generator seeded from the case's name and stored in the
fixture, so the test needs no agreement between random number generators, and adding a case
does not change the others. Each case states its tolerance (``rtol``, ``atol``) and why.

Regenerate (``/tmp/torchenv`` is any environment with PyTorch and tinytorch installed)::

    /tmp/torchenv/bin/python -m tools.make_pytorch_reference          # writes the fixture
    /tmp/torchenv/bin/python -m tools.make_pytorch_reference --check  # also compares now
"""
from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "pytorch_reference.npz"
MAX_BYTES = 1_000_000

F64 = {"rtol": 1e-9, "atol": 1e-12}   # float64 arithmetic; only the order of sums differs
F32 = {"rtol": 5e-5, "atol": 5e-6}    # float32: a few ulps over sums of tens of terms
CONV = {"rtol": 1e-4, "atol": 2e-5}   # float32 sums of up to 50 products of magnitude ~10


@dataclass
class Case:
    """One computation; ``inputs(rng)`` makes its input arrays, ``run(lib, *leaves)`` runs it.

    ``constant`` lists the indices of floating-point inputs that get no gradient (data,
    targets); integer and boolean inputs never do.
    """

    name: str
    inputs: Callable[[np.random.Generator], tuple]
    run: Callable
    rtol: float
    atol: float
    why: str = ""
    constant: tuple = ()
    kind: str = field(default="op")

    def wants_grad(self, index: int, array: np.ndarray) -> bool:
        return array.dtype.kind == "f" and index not in self.constant


# ----------------------------------------------------------------------------- adapters
class TinyLib:
    """tinytorch under the names the cases use."""

    is_torch = False

    def __init__(self):
        import tinytorch as tt

        self.tt = tt
        for name in ("relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax", "cat",
                     "stack", "where", "conv2d", "max_pool2d", "avg_pool2d", "layer_norm",
                     "embedding", "scaled_dot_product_attention", "mse_loss", "cross_entropy",
                     "binary_cross_entropy", "binary_cross_entropy_with_logits", "Linear",
                     "Conv2d", "MaxPool2d", "AvgPool2d", "LayerNorm", "Embedding",
                     "MultiHeadAttention", "GELU", "SGD", "Adam", "AdamW"):
            setattr(self, name, getattr(tt, name))

    def leaf(self, array: np.ndarray, grad: bool):
        array = array.copy()
        return self.tt.Parameter(array) if grad else self.tt.Tensor(array)

    @staticmethod
    def amax(x, dim):
        return x.max(dim=dim)  # tinytorch's max(dim) is torch.amax: ties share the gradient

    def clip_grad_norm(self, params, max_norm):
        return float(self.tt.clip_grad_norm(params, max_norm))

    @staticmethod
    def set_grad(param, array):
        param.grad = array.copy()

    @staticmethod
    def numpy(t) -> np.ndarray:
        return np.array(t.data)

    @staticmethod
    def grad(t) -> np.ndarray:
        return np.zeros_like(t.data) if t.grad is None else np.array(t.grad)

    @staticmethod
    def backward(out, upstream: np.ndarray):
        out.backward(upstream)


class TorchLib:
    """PyTorch under the same names."""

    is_torch = True

    def __init__(self):
        import torch
        import torch.nn.functional as F

        self.torch = torch
        for name in ("relu", "sigmoid", "tanh", "softmax", "log_softmax", "cat", "stack",
                     "where", "amax"):
            setattr(self, name, getattr(torch, name))
        for name in ("gelu", "conv2d", "max_pool2d", "avg_pool2d", "layer_norm", "embedding",
                     "scaled_dot_product_attention", "mse_loss", "cross_entropy",
                     "binary_cross_entropy", "binary_cross_entropy_with_logits"):
            setattr(self, name, getattr(F, name))
        for name in ("Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "LayerNorm", "Embedding",
                     "GELU", "MultiheadAttention"):
            setattr(self, name, getattr(torch.nn, name))
        for name in ("SGD", "Adam", "AdamW"):
            setattr(self, name, getattr(torch.optim, name))

    def leaf(self, array: np.ndarray, grad: bool):
        tensor = self.torch.from_numpy(array.copy())
        return self.torch.nn.Parameter(tensor) if grad else tensor

    def clip_grad_norm(self, params, max_norm):
        return float(self.torch.nn.utils.clip_grad_norm_(params, max_norm))

    def set_grad(self, param, array):
        param.grad = self.torch.from_numpy(array.copy())

    @staticmethod
    def numpy(t) -> np.ndarray:
        return t.detach().numpy().copy()

    @staticmethod
    def grad(t) -> np.ndarray:
        return np.zeros(tuple(t.shape), dtype=TorchLib.numpy(t).dtype) if t.grad is None \
            else t.grad.numpy().copy()

    def backward(self, out, upstream: np.ndarray):
        out.backward(self.torch.from_numpy(upstream))


def put(module, **parameters):
    """Make the given leaves ``module``'s parameters (dotted names reach sub-modules)."""
    for dotted, leaf in parameters.items():
        owner, _, name = dotted.replace("__", ".").rpartition(".")
        target = module
        for part in filter(None, owner.split(".")):
            target = getattr(target, part)
        setattr(target, name, leaf)
    return module


def upstream(shape: tuple, dtype) -> np.ndarray:
    """The fixed gradient sent into every output: varied, non-zero, no random numbers."""
    size = int(np.prod(shape, dtype=np.int64))
    return (0.5 + np.cos(np.arange(size) * 1.7)).reshape(shape).astype(dtype)


def evaluate(lib, case: Case, arrays: tuple) -> dict:
    """Run ``case`` on ``arrays`` with ``lib``: its value and gradients as numpy arrays."""
    leaves = [lib.leaf(a, case.wants_grad(i, a)) for i, a in enumerate(arrays)]
    result = case.run(lib, *leaves)
    if isinstance(result, dict):
        return {key: np.asarray(value) for key, value in result.items()}
    out = lib.numpy(result)
    lib.backward(result, upstream(out.shape, out.dtype))
    values = {"out": out}
    for i, (leaf, array) in enumerate(zip(leaves, arrays)):
        if case.wants_grad(i, array):
            values[f"grad{i}"] = lib.grad(leaf)
    return values


# ----------------------------------------------------------------------------- inputs
def normal(*shape, dtype=np.float64):
    return lambda rng: rng.standard_normal(shape).astype(dtype)


def positive(*shape, dtype=np.float64):
    return lambda rng: rng.uniform(0.5, 2.0, shape).astype(dtype)


def draw(*makers):
    """``inputs`` made of several array makers, drawn in order from one generator."""
    return lambda rng: tuple(make(rng) for make in makers)


def halves(*shape, dtype=np.float64):
    """Multiples of 0.5 in [-1.5, 1.5]: exact zeros (ReLU's kink) and ties."""
    return lambda rng: (rng.integers(-3, 4, shape) / 2).astype(dtype)


def ints(low, high, *shape):
    return lambda rng: rng.integers(low, high, shape).astype(np.int64)


def const(array):
    return lambda rng: np.asarray(array)


def extreme_logits(rng):
    rows = np.array([[1e4, 0.0, -1e4, 5.0], [1000.0, 1000.0, 999.0, -1000.0],
                     [-50.0, -60.0, -70.0, -80.0], [0.0, 0.0, 0.0, 0.0],
                     [88.0, -88.0, 89.0, 0.5]], dtype=np.float32)
    return np.concatenate([rows, rng.standard_normal((3, 4)).astype(np.float32) * 3])


# ----------------------------------------------------------------------------- cases
def op_cases() -> list:
    """Tensor operations in float64, with broadcasting."""
    def case(name, inputs, run, tol=F64, why="float64", **kw):
        return Case(name, inputs, run, why=why, **tol, **kw)

    return [
        case("add_broadcast", draw(normal(3, 1, 4), normal(2, 4)), lambda lib, a, b: a + b),
        case("sub_broadcast", draw(normal(2, 3), normal(3)), lambda lib, a, b: a - b),
        case("rsub_scalar", draw(normal(2, 3)), lambda lib, a: 2.0 - a),
        case("mul_broadcast", draw(normal(4, 1), normal(1, 5)), lambda lib, a, b: a * b),
        case("div_broadcast", draw(normal(2, 3, 4), positive(3, 1)), lambda lib, a, b: a / b),
        case("rdiv_scalar", draw(positive(5)), lambda lib, a: 1.5 / a),
        case("pow_2", draw(normal(3, 4)), lambda lib, a: a ** 2),
        case("pow_3", draw(normal(3, 4)), lambda lib, a: a ** 3),
        case("pow_half", draw(positive(3, 4)), lambda lib, a: a ** 0.5),
        case("pow_minus_1", draw(positive(3, 4)), lambda lib, a: a ** -1),
        case("neg", draw(normal(3, 4)), lambda lib, a: -a),
        case("exp", draw(normal(3, 4)), lambda lib, a: a.exp()),
        case("log", draw(positive(3, 4)), lambda lib, a: a.log()),
        case("sqrt", draw(positive(3, 4)), lambda lib, a: a.sqrt()),
        case("tanh", draw(normal(3, 4)), lambda lib, a: a.tanh()),
        case("matmul_2d", draw(normal(3, 4), normal(4, 5)), lambda lib, a, b: a @ b),
        case("matmul_batch_broadcast", draw(normal(2, 1, 3, 4), normal(5, 4, 2)),
             lambda lib, a, b: a @ b),
        case("matmul_vector_matrix", draw(normal(4), normal(4, 3)), lambda lib, a, b: a @ b),
        case("matmul_batch_vector", draw(normal(2, 3, 4), normal(4)), lambda lib, a, b: a @ b),
        case("matmul_vector_vector", draw(normal(4), normal(4)), lambda lib, a, b: a @ b),
        case("sum_all", draw(normal(3, 4)), lambda lib, a: a.sum()),
        case("sum_dim", draw(normal(3, 4, 2)), lambda lib, a: a.sum(dim=1)),
        case("sum_dims_keepdim", draw(normal(3, 4, 2)),
             lambda lib, a: a.sum(dim=(0, 2), keepdim=True)),
        case("sum_empty_dims", draw(normal(2, 3)), lambda lib, a: a.sum(dim=())),
        case("mean_dim", draw(normal(3, 4)), lambda lib, a: a.mean(dim=-1)),
        case("mean_all", draw(normal(3, 4)), lambda lib, a: a.mean()),
        case("var_dim", draw(normal(3, 5)), lambda lib, a: a.var(dim=1)),
        case("var_dims_correction_0", draw(normal(3, 5, 2)),
             lambda lib, a: a.var(dim=(0, 1), correction=0)),
        case("amax_dim", draw(normal(3, 5)), lambda lib, a: lib.amax(a, 1)),
        case("amax_ties", draw(halves(4, 5)), lambda lib, a: lib.amax(a, 1),
             why="float64; ties share the gradient equally, as torch.amax"),
        case("reshape", draw(normal(2, 6)), lambda lib, a: a.reshape(3, 2, 2) * 1.0),
        case("transpose", draw(normal(2, 3, 4)), lambda lib, a: a.transpose(0, 2)),
        case("transpose_square", draw(normal(3, 3)), lambda lib, a: a.transpose(0, 1)),
        case("permute", draw(normal(2, 3, 4)), lambda lib, a: a.permute(2, 0, 1)),
        case("getitem_slices", draw(normal(4, 6)), lambda lib, a: a[1:, ::2]),
        case("getitem_repeated_rows", draw(normal(4, 3)), lambda lib, a: a[[0, 0, 2]]),
        case("getitem_mixed", draw(normal(4, 6)), lambda lib, a: a[1:, [0, 3, 3]]),
        case("masked_fill", draw(normal(3, 4), lambda rng: rng.random((3, 4)) < 0.4),
             lambda lib, a, mask: a.masked_fill(mask, -1.5)),
        case("cat", draw(normal(2, 3), normal(2, 1)), lambda lib, a, b: lib.cat([a, b], 1)),
        case("stack", draw(normal(2, 3), normal(2, 3)),
             lambda lib, a, b: lib.stack([a, b], 1)),
        case("where_broadcast", draw(lambda rng: rng.random((3, 4)) < 0.5, normal(3, 4),
                                     normal(4)),
             lambda lib, cond, a, b: lib.where(cond, a, b)),
        # activations
        case("relu", draw(halves(4, 5)), lambda lib, a: lib.relu(a),
             why="float64; inputs hit 0 exactly, where both take the slope 0"),
        case("sigmoid", draw(lambda rng: np.concatenate([[-800.0, -40.0, 0.0, 40.0, 800.0],
                                                         rng.standard_normal(7) * 4])),
             lambda lib, a: lib.sigmoid(a)),
        case("tanh_function", draw(normal(3, 4)), lambda lib, a: lib.tanh(a * 3.0)),
        case("gelu_exact", draw(lambda rng: np.concatenate([np.linspace(-6, 6, 25),
                                                            rng.standard_normal(7)])),
             lambda lib, a: lib.gelu(a), tol={"rtol": 5e-7, "atol": 1e-7},
             why="tinytorch's erf is accurate to float32 precision (3e-8 absolute), "
                 "not float64's"),
        case("gelu_tanh", draw(lambda rng: np.concatenate([np.linspace(-6, 6, 25),
                                                           rng.standard_normal(7)])),
             lambda lib, a: lib.gelu(a, approximate="tanh")),
        case("softmax_last", draw(normal(3, 5)), lambda lib, a: lib.softmax(a * 4.0, -1)),
        case("softmax_dim_0", draw(normal(3, 5)), lambda lib, a: lib.softmax(a, 0)),
        case("log_softmax_extreme", draw(lambda rng: np.array(
                [[1000.0, 0.0, -1000.0], [50.0, 50.0, 49.0], [-700.0, -701.0, -702.0]])),
             lambda lib, a: lib.log_softmax(a, -1)),
    ]


def _conv(kernel, stride, padding, bias=True):
    def run(lib, x, w, *b):
        layer = lib.Conv2d(2, 3, kernel, stride=stride, padding=padding, bias=bias)
        return put(layer, weight=w, **({"bias": b[0]} if bias else {}))(x)
    return run


def _pool(cls, kernel, stride):
    return lambda lib, x: getattr(lib, cls)(kernel, stride)(x)


def layer_cases() -> list:
    """Layers in float32, with their parameters as inputs."""
    f32 = {"dtype": np.float32}

    def case(name, inputs, run, tol=F32, why="float32", **kw):
        return Case(name, inputs, run, why=why, kind="layer", **tol, **kw)

    cases = [
        case("linear", draw(normal(4, 5, **f32), normal(3, 5, **f32), normal(3, **f32)),
             lambda lib, x, w, b: put(lib.Linear(5, 3), weight=w, bias=b)(x)),
        case("linear_3d_input", draw(normal(2, 3, 5, **f32), normal(3, 5, **f32),
                                     normal(3, **f32)),
             lambda lib, x, w, b: put(lib.Linear(5, 3), weight=w, bias=b)(x)),
        case("linear_no_bias", draw(normal(4, 5, **f32), normal(3, 5, **f32)),
             lambda lib, x, w: put(lib.Linear(5, 3, bias=False), weight=w)(x)),
    ]
    for kernel, stride, padding in [(3, 1, 0), (3, 1, 1), (3, 2, 1), (1, 1, 0), (5, 2, 2),
                                    ((2, 3), (2, 1), (1, 2)), (4, 3, 0)]:
        kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
        name = f"conv2d_k{kh}x{kw}_s{stride}_p{padding}".replace(" ", "")
        cases.append(case(name, draw(normal(2, 2, 7, 8, **f32), normal(3, 2, kh, kw, **f32),
                                     normal(3, **f32)), _conv(kernel, stride, padding),
                          tol=CONV, why="float32 sums of C*kh*kw products (up to 50)"))
    cases.append(case("conv2d_no_bias", draw(normal(2, 2, 6, 6, **f32),
                                             normal(3, 2, 3, 3, **f32)),
                      _conv(3, 1, 1, bias=False), tol=CONV,
                      why="float32 sums of C*kh*kw products"))
    ties = ints(0, 3, 2, 2, 6, 7)  # values 0, 1, 2: most windows hold a tied maximum
    for kernel, stride in [(2, None), (3, 1), ((2, 3), (1, 2)), (2, 1)]:
        label = f"k{kernel}_s{stride}".replace(" ", "")
        cases.append(case(f"max_pool2d_ties_{label}",
                          lambda rng: (ties(rng).astype(np.float32),),
                          _pool("MaxPool2d", kernel, stride),
                          why="float32; the first tied maximum takes the gradient"))
        cases.append(case(f"avg_pool2d_{label}", draw(normal(2, 2, 6, 7, **f32)),
                          _pool("AvgPool2d", kernel, stride)))
    cases += [
        case("gelu_module_default", draw(normal(3, 4, **f32)), lambda lib, x: lib.GELU()(x * 2),
             why="float32; both defaults are the exact erf form"),
        case("layer_norm", draw(normal(2, 3, 6, **f32), normal(6, **f32), normal(6, **f32)),
             lambda lib, x, w, b: put(lib.LayerNorm(6), weight=w, bias=b)(x * 3 + 1)),
        case("layer_norm_2d_shape", draw(normal(2, 3, 4, **f32), normal(3, 4, **f32),
                                         normal(3, 4, **f32)),
             lambda lib, x, w, b: lib.layer_norm(x, (3, 4), w, b, 1e-5)),
        case("layer_norm_no_affine", draw(normal(4, 5, **f32)),
             lambda lib, x: lib.LayerNorm(5, elementwise_affine=False)(x)),
        case("embedding_repeated_ids", draw(ints(0, 7, 2, 5), normal(7, 4, **f32)),
             lambda lib, ids, w: put(lib.Embedding(7, 4), weight=w)(ids),
             why="float32; repeated ids add their gradients"),
    ]
    return cases


def _sdpa(**options):
    return lambda lib, q, k, v, *mask: lib.scaled_dot_product_attention(q, k, v, *mask,
                                                                        **options)


def _blocked_row_mask(rng):
    allowed = rng.random((3, 5)) < 0.7
    allowed[:, 0] = True
    allowed[1] = False  # a query that may attend to nothing: weights 0, output 0
    return allowed


def _additive_mask(rng):
    mask = rng.standard_normal((3, 5))
    mask[0, 2:] = -np.inf
    return mask


def _mha(mask_kind):
    def run(lib, x, w_in, b_in, w_out, b_out):
        t = x.shape[1]
        causal = np.triu(np.full((t, t), -np.inf), 1)
        if lib.is_torch:  # PyTorch's in_proj holds the q, k, v rows in tinytorch's c_attn order
            layer = put(lib.MultiheadAttention(6, 2, batch_first=True, dtype=lib.torch.float64),
                        in_proj_weight=w_in,
                        in_proj_bias=b_in, out_proj__weight=w_out, out_proj__bias=b_out)
            mask = None if mask_kind is None else lib.torch.from_numpy(causal)
            return layer(x, x, x, attn_mask=mask, need_weights=False)[0]
        layer = put(lib.MultiHeadAttention(6, 2), c_attn__weight=w_in, c_attn__bias=b_in,
                    c_proj__weight=w_out, c_proj__bias=b_out)
        if mask_kind == "is_causal":
            return layer(x, is_causal=True)
        return layer(x, attn_mask=None if mask_kind is None else causal)
    return run


def attention_cases() -> list:
    def case(name, inputs, run, tol=F64, why="float64", **kw):
        return Case(name, inputs, run, why=why, kind="attention", **tol, **kw)

    qkv = (normal(2, 2, 3, 4), normal(2, 2, 5, 4), normal(2, 2, 5, 4))
    square = (normal(2, 2, 4, 4), normal(2, 2, 4, 4), normal(2, 2, 4, 4))
    mha_inputs = draw(normal(2, 4, 6), normal(18, 6), normal(18), normal(6, 6), normal(6))
    return [
        case("sdpa", draw(*qkv), _sdpa()),
        case("sdpa_scale", draw(*qkv), _sdpa(scale=0.3)),
        case("sdpa_bool_mask_with_blocked_row", draw(*qkv, _blocked_row_mask), _sdpa(),
             why="float64; a query row with every key masked gets 0, as torch's safe softmax"),
        case("sdpa_additive_mask", draw(*qkv, _additive_mask), _sdpa(), constant=(3,)),
        case("sdpa_is_causal", draw(*square), _sdpa(is_causal=True)),
        case("sdpa_broadcast_batch", draw(normal(2, 2, 3, 4), normal(1, 2, 5, 4),
                                          normal(2, 1, 5, 4)), _sdpa()),
        case("multi_head_attention", mha_inputs, _mha(None),
             why="float64; tinytorch's c_attn and c_proj put into torch.nn.MultiheadAttention's "
                 "in_proj and out_proj (the same q, k, v row order)"),
        case("multi_head_attention_causal_mask", mha_inputs, _mha("mask"),
             why="float64; the same additive causal mask given to both"),
        case("multi_head_attention_is_causal", mha_inputs, _mha("is_causal"),
             why="float64; tinytorch's is_causal=True against torch's causal mask"),
    ]


def loss_cases() -> list:
    f32 = {"dtype": np.float32}

    def case(name, inputs, run, tol=F32, why="float32", **kw):
        return Case(name, inputs, run, why=why, kind="loss", **tol, **kw)

    def soft_targets(*shape):
        return lambda rng: rng.uniform(0, 1, shape).astype(np.float32)

    def probabilities(rng):  # exactly 0 and 1 included: both clamp log at -100
        p = np.array([0.0, 1.0, 1e-7, 1 - 1e-7, 0.5], dtype=np.float32)
        return np.concatenate([p, rng.uniform(0.05, 0.95, 7).astype(np.float32)])

    def logits_for_bce(rng):
        x = np.array([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], dtype=np.float32)
        return np.concatenate([x, rng.standard_normal(5).astype(np.float32) * 3])

    def ignored_targets(rng):
        t = rng.integers(0, 4, 8)
        t[[1, 4]] = -100
        return t

    def row_probabilities(rng):
        p = rng.random((8, 4)).astype(np.float32)
        return p / p.sum(axis=1, keepdims=True)

    def sequence_ce(lib, logits, targets):
        if lib.is_torch:  # PyTorch wants the classes in dimension 1: flatten (B, T) first
            return lib.cross_entropy(logits.reshape(-1, 4), targets.reshape(-1))
        return lib.cross_entropy(logits, targets)

    cases = []
    for reduction in ("mean", "sum", "none"):
        cases += [
            case(f"mse_{reduction}", draw(normal(4, 3, **f32), normal(4, 3, **f32)),
                 lambda lib, p, t, r=reduction: lib.mse_loss(p, t, reduction=r)),
            case(f"cross_entropy_extreme_logits_{reduction}",
                 draw(extreme_logits, ints(0, 4, 8)),
                 lambda lib, z, t, r=reduction: lib.cross_entropy(z, t, reduction=r),
                 why="float32; logits up to 1e4 stay finite through the max subtraction"),
            case(f"bce_{reduction}", draw(probabilities, soft_targets(12)),
                 lambda lib, p, t, r=reduction: lib.binary_cross_entropy(p, t, reduction=r),
                 constant=(1,), tol={"rtol": 2e-5, "atol": 1e-4},
                 why="float32; p = 0 and 1 clamp the logs at -100 and the gradient's "
                     "denominator at 1e-12, so gradients reach 1e12 (atol is far below that)"),
            case(f"bce_with_logits_extreme_{reduction}", draw(logits_for_bce, soft_targets(12)),
                 lambda lib, z, t, r=reduction: lib.binary_cross_entropy_with_logits(
                     z, t, reduction=r), constant=(1,)),
        ]
    cases += [
        case("cross_entropy_probability_targets", draw(extreme_logits, row_probabilities),
             lambda lib, z, t: lib.cross_entropy(z, t), constant=(1,)),
        case("cross_entropy_ignore_index", draw(normal(8, 4, **f32), ignored_targets),
             lambda lib, z, t: lib.cross_entropy(z, t, ignore_index=-100)),
        case("cross_entropy_sequence", draw(normal(2, 3, 4, **f32), ints(0, 4, 2, 3)),
             sequence_ce, why="float32; (B, T, C) logits against (B, T) targets"),
    ]
    return cases


def _optimizer(make, steps=20):
    """Minimise mean((x W^T + b - y)^2) for ``steps`` steps; record W, b and the losses."""
    def run(lib, w, b, x, y):
        optimizer = make(lib, [w, b])
        trajectory = {"w": [], "b": [], "loss": []}
        for _ in range(steps):
            optimizer.zero_grad()
            loss = ((x @ w.T + b - y) ** 2).mean()
            loss.backward()
            optimizer.step()
            trajectory["w"].append(lib.numpy(w))
            trajectory["b"].append(lib.numpy(b))
            trajectory["loss"].append(lib.numpy(loss))
        return {key: np.stack(values) for key, values in trajectory.items()}
    return run


def optimizer_cases() -> list:
    f32 = {"dtype": np.float32}
    inputs = draw(normal(3, 4, **f32), normal(3, **f32), normal(8, 4, **f32), normal(8, 3, **f32))
    settings = {
        "sgd": lambda lib, p: lib.SGD(p, lr=0.1),
        "sgd_momentum": lambda lib, p: lib.SGD(p, lr=0.05, momentum=0.9),
        "sgd_momentum_weight_decay": lambda lib, p: lib.SGD(p, lr=0.05, momentum=0.9,
                                                            weight_decay=0.01),
        "adam": lambda lib, p: lib.Adam(p, lr=0.05),
        "adam_betas_eps": lambda lib, p: lib.Adam(p, lr=0.05, betas=(0.8, 0.99), eps=1e-6),
        "adam_weight_decay": lambda lib, p: lib.Adam(p, lr=0.05, weight_decay=0.1),
        "adamw": lambda lib, p: lib.AdamW(p, lr=0.05, weight_decay=0.1),
    }
    return [Case(f"optimizer_{name}", inputs, _optimizer(make), kind="optimizer",
                 rtol=1e-4, atol=1e-5, constant=(2, 3),
                 why="float32 over 20 steps: rounding differences compound step by step")
            for name, make in settings.items()]


def _clip(max_norm):
    def run(lib, g1, g2):
        params = [lib.leaf(np.zeros(g1.shape, np.float32), True),
                  lib.leaf(np.zeros(g2.shape, np.float32), True)]
        lib.set_grad(params[0], lib.numpy(g1))
        lib.set_grad(params[1], lib.numpy(g2))
        norm = lib.clip_grad_norm(params, max_norm)
        return {"norm": np.array(norm), "grad0": lib.grad(params[0]),
                "grad1": lib.grad(params[1])}
    return run


def clipping_cases() -> list:
    inputs = draw(lambda rng: rng.standard_normal((3, 4)).astype(np.float32) * 2,
                  lambda rng: rng.standard_normal(5).astype(np.float32))
    return [Case(f"clip_grad_norm_{label}", inputs, _clip(max_norm), kind="clipping",
                 rtol=1e-6, atol=1e-7, constant=(0, 1),
                 why="float32 gradients, the norm summed in float64 by tinytorch")
            for label, max_norm in (("clipped", 1.0), ("unchanged", 100.0))]


CASES = op_cases() + layer_cases() + attention_cases() + loss_cases() + optimizer_cases() \
    + clipping_cases()
BY_NAME = {case.name: case for case in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"


def case_inputs(case: Case) -> tuple:
    """The case's inputs, from a generator seeded with (a checksum of) its name."""
    return tuple(np.asarray(a) for a in case.inputs(np.random.default_rng(
        zlib.crc32(case.name.encode()))))


# ----------------------------------------------------------------------------- the fixture
def build_fixture(lib) -> dict:
    arrays = {}
    for case in CASES:
        inputs = case_inputs(case)
        for i, array in enumerate(inputs):
            arrays[f"{case.name}/in{i}"] = array
        for key, value in evaluate(lib, case, inputs).items():
            arrays[f"{case.name}/{key}"] = value
    return arrays


def read_fixture(path: Path = FIXTURE) -> tuple:
    """``(meta, arrays)``: the fixture's metadata and a dict of its arrays."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return json.loads(str(arrays.pop("__meta__"))), arrays


def stored_case(arrays: dict, name: str) -> tuple:
    """``(inputs, expected)`` of case ``name`` in the fixture's arrays."""
    prefix = f"{name}/"
    entries = {key[len(prefix):]: value for key, value in arrays.items()
               if key.startswith(prefix)}
    count = sum(1 for key in entries if key.startswith("in"))
    inputs = tuple(entries.pop(f"in{i}") for i in range(count))
    return inputs, entries


def worst_differences(actual: dict, expected: dict) -> dict:
    """For every key: the largest |actual - expected| relative to max(|expected|, 1e-30)."""
    result = {}
    for key, want in expected.items():
        got = actual[key]
        finite = np.isfinite(want) & np.isfinite(got)
        diff = np.abs(got.astype(np.float64) - want)[finite]
        scale = np.maximum(np.abs(want.astype(np.float64))[finite], 1e-30)
        result[key] = (float(diff.max(initial=0.0)), float((diff / scale).max(initial=0.0)))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=FIXTURE)
    parser.add_argument("--check", action="store_true",
                        help="then compare tinytorch with the new fixture, case by case")
    args = parser.parse_args(argv)
    import torch

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    arrays = build_fixture(TorchLib())
    meta = {"generated_by": "tools/make_pytorch_reference.py", "torch": torch.__version__,
            "numpy": np.__version__, "cases": [case.name for case in CASES]}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, __meta__=np.array(json.dumps(meta)), **arrays)
    size = args.output.stat().st_size
    print(f"wrote {len(CASES)} cases, {len(arrays)} arrays, {size:,} bytes to {args.output}")
    if size > MAX_BYTES:
        print(f"the fixture is larger than {MAX_BYTES:,} bytes: shrink the cases")
        return 1
    if args.check:
        tiny, failures = TinyLib(), 0
        _, stored = read_fixture(args.output)
        for case in CASES:
            inputs, expected = stored_case(stored, case.name)
            actual = evaluate(tiny, case, inputs)
            for key, (absolute, relative) in worst_differences(actual, expected).items():
                ok = np.allclose(actual[key], expected[key], rtol=case.rtol, atol=case.atol,
                                 equal_nan=True)
                failures += not ok
                print(f"{'ok ' if ok else 'BAD'} {case.name}/{key}: abs {absolute:.2e}, "
                      f"rel {relative:.2e} (rtol {case.rtol:g}, atol {case.atol:g})")
        print(f"{failures} mismatches")
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
