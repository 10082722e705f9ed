"""Quantization (chapter 15): weights stored as small integers and a scale.

An affine quantizer of ``b`` bits maps the real interval [lo, hi] onto the signed integers
[qmin, qmax] = [-2^(b-1), 2^(b-1) - 1]::

    q = clamp(round(x / scale) + zero_point, qmin, qmax)      x ~ (q - zero_point) * scale
    scale = (hi - lo) / (qmax - qmin)

The range is PyTorch's min/max observer rule: the tensor's minimum and maximum, extended to
contain 0. So 0 is one of the grid points (zero padding, ReLU outputs and pruned weights stay
exactly 0), the zero point is always one of the integers, and every value in [lo, hi] lands
at most scale/2 from its reconstruction, a constant or one-signed tensor included. The
symmetric scheme fixes zero_point = 0 and scale = max|x| / ((qmax - qmin) / 2), as PyTorch's
``per_tensor_symmetric`` and ``per_channel_symmetric`` observers do.

Per channel (``per_channel_axis=0`` for a Linear or Conv2d weight: one row or filter per
output) each slice along the axis gets its own scale and zero point, so a channel of small
weights is not quantized with the step of the largest one.

Storage: ``q`` is np.int8 for 2 to 8 bits (int4 values lie in [-8, 7] but still take one byte
each; :func:`pack_int4` stores two per byte), np.int16 for 9 to 16 bits. Scales are float32,
zero points have the dtype of ``q``.
"""
from __future__ import annotations

import copy

import numpy as np

from .checks import check_dim, check_int
from .core.autograd import no_grad
from .core.layers import Linear
from .core.module import Module
from .core.spatial import Conv2d, conv2d
from .core.tensor import Tensor, as_tensor

__all__ = ["quantize", "dequantize", "pack_int4", "unpack_int4", "QuantizedLinear",
           "QuantizedConv2d", "quantize_model", "model_nbytes"]

SCHEMES = ("affine", "symmetric")
_EPS = np.float32(np.finfo(np.float32).eps)  # PyTorch's floor on a scale


# ----------------------------------------------------------------------------- the quantizer
def _check_bits(bits) -> int:
    return _in_range(check_int("quantize", "bits", bits), 2, 16, "bits")


def _in_range(value: int, low: int, high: int, name: str) -> int:
    if not low <= value <= high:
        raise ValueError(f"quantize: {name} must be between {low} and {high}; got {value}")
    return value


def _qrange(bits: int) -> tuple:
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _storage(bits: int):
    return np.int8 if bits <= 8 else np.int16


def _float_values(tensor) -> np.ndarray:
    x = tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if x.dtype.kind != "f":
        raise TypeError(f"quantize expects floating-point values; got dtype {x.dtype} "
                        f"(an integer tensor is already quantized)")
    if x.size == 0:
        raise ValueError(f"quantize: cannot quantize an empty tensor (shape {x.shape})")
    if not np.isfinite(x).all():
        raise ValueError("quantize: the tensor holds NaN or infinite values")
    return x


def _channel_shape(ndim: int, axis: int | None, channels: int) -> tuple:
    """The shape that broadcasts one value per channel along ``axis`` (or () per tensor)."""
    if axis is None:
        return ()
    shape = [1] * ndim
    shape[axis] = channels
    return tuple(shape)


def _round_to_grid(x: np.ndarray, scale, zero_point, bits: int) -> np.ndarray:
    """``clamp(round(x / scale) + zero_point)`` in the storage dtype (scale, zero point fixed)."""
    qmin, qmax = _qrange(bits)
    q = np.rint(x.astype(np.float64) / scale) + zero_point
    return np.clip(q, qmin, qmax).astype(_storage(bits))


def quantize(tensor, bits: int = 8, scheme: str = "affine", per_channel_axis=None) -> tuple:
    """``(q, scale, zero_point)`` of a float tensor (a Tensor or a numpy array).

    ``scheme`` is ``"affine"`` (the range [min(x, 0), max(x, 0)] onto all 2^bits integers) or
    ``"symmetric"`` (zero_point = 0, the range [-max|x|, max|x|]). ``per_channel_axis``:
    None for one scale for the whole tensor, or the axis along which each slice gets its own.
    ``scale`` and ``zero_point`` are 0-d arrays per tensor and have one entry per channel
    otherwise. ``dequantize(q, scale, zero_point, per_channel_axis)`` is within scale/2 of
    every value, and exactly 0 where the value was 0.
    """
    x = _float_values(tensor)
    bits = _check_bits(bits)
    if scheme not in SCHEMES:
        raise ValueError(f"quantize: unknown scheme {scheme!r}; choose one of {SCHEMES}")
    axis = None if per_channel_axis is None else check_dim("quantize", per_channel_axis, x.shape)
    reduce = tuple(d for d in range(x.ndim) if d != axis)
    qmin, qmax = _qrange(bits)
    lo = np.minimum(x.min(axis=reduce, keepdims=True).astype(np.float64), 0.0)  # contains 0
    hi = np.maximum(x.max(axis=reduce, keepdims=True).astype(np.float64), 0.0)
    if scheme == "affine":
        exact = (hi - lo) / (qmax - qmin)
    else:
        exact = np.maximum(-lo, hi) / ((qmax - qmin) / 2)
    scale = np.maximum(exact.astype(np.float32), _EPS)
    # Stored as float32: round the scale up, never down, so that [lo, hi] still fits the grid.
    scale = np.where(scale < exact, np.nextafter(scale, np.float32(np.inf)), scale)
    if scheme == "affine":
        # lo <= 0 puts it in [qmin, qmax]; the clip only guards against float rounding.
        zero_point = np.clip(qmin - np.rint(lo / scale), qmin, qmax)
    else:
        zero_point = np.zeros_like(lo)
    q = _round_to_grid(x, scale.astype(np.float64), zero_point, bits)
    shape = (x.shape[axis],) if axis is not None else ()
    return (q, scale.reshape(shape).astype(np.float32),
            zero_point.reshape(shape).astype(_storage(bits)))


def dequantize(q, scale, zero_point, per_channel_axis=None) -> np.ndarray:
    """``(q - zero_point) * scale`` as float32: the values that ``quantize`` stands for.

    ``scale`` and ``zero_point`` are scalars, or one per channel along ``per_channel_axis``.
    (Computed in float32: ``q - zero_point`` is an exact small integer, so the product is
    rounded once, exactly as in float64 followed by a cast.)
    """
    q = np.asarray(q)
    if q.dtype.kind not in "iu":
        raise TypeError(f"dequantize expects integers; got dtype {q.dtype}")
    scale, zero_point = np.asarray(scale, np.float32), np.asarray(zero_point)
    if per_channel_axis is None:
        if scale.size != 1 or zero_point.size != 1:
            raise ValueError(f"dequantize: per tensor needs one scale and zero point; got "
                             f"shapes {scale.shape} and {zero_point.shape} (pass "
                             f"per_channel_axis for per-channel values)")
        shape = ()
    else:
        axis = check_dim("dequantize", per_channel_axis, q.shape)
        if scale.shape != (q.shape[axis],) or zero_point.shape != (q.shape[axis],):
            raise ValueError(f"dequantize: q of shape {q.shape} has {q.shape[axis]} channels "
                             f"along axis {axis}; got scale {scale.shape} and zero point "
                             f"{zero_point.shape}")
        shape = _channel_shape(q.ndim, axis, q.shape[axis])
    centred = q.astype(np.float32) - zero_point.reshape(shape).astype(np.float32)
    return centred * scale.reshape(shape)


# ----------------------------------------------------------------------------- int4 packing
def pack_int4(q) -> np.ndarray:
    """Two 4-bit integers per byte: entry 2i in the low nibble of byte i, 2i+1 in the high
    one (an odd count leaves the last high nibble 0). ``q`` holds values in [-8, 7]."""
    flat = np.asarray(q).reshape(-1)
    if flat.dtype.kind not in "iu" or flat.size and (flat.min() < -8 or flat.max() > 7):
        raise ValueError("pack_int4 expects integers in [-8, 7] (4-bit values)")
    nibbles = (flat.astype(np.int16) & 0xF).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return nibbles[0::2] | (nibbles[1::2] << 4)


def unpack_int4(packed, shape) -> np.ndarray:
    """The np.int8 array of ``shape`` that :func:`pack_int4` packed."""
    packed = np.asarray(packed, dtype=np.uint8)
    size = int(np.prod(shape))
    if packed.size != (size + 1) // 2:
        raise ValueError(f"unpack_int4: {packed.size} bytes cannot hold shape {tuple(shape)}")
    nibbles = np.empty(2 * packed.size, dtype=np.int8)
    nibbles[0::2] = packed & 0xF
    nibbles[1::2] = packed >> 4
    return ((nibbles ^ 8) - 8)[:size].reshape(shape)  # 4-bit two's complement to int8


# ----------------------------------------------------------------------------- layers
class _QuantizedLayer(Module):
    """What QuantizedLinear and QuantizedConv2d share: the weight as buffers ``weight_q``,
    ``weight_scale``, ``weight_zero_point``, the float32 ``bias`` as a buffer (or None), and
    optionally a calibrated 8-bit grid for the input (``input_scale``, ``input_zero_point``).
    Inference only: outputs carry no gradient."""

    input_bits = 8

    def _quantize_weight(self, layer, bits: int, per_channel: bool, scheme: str) -> None:
        """Store ``layer``'s weight quantized to ``bits`` with ``scheme`` (one scale per output
        channel when ``per_channel``) as the buffers ``weight_q``, ``weight_scale`` and
        ``weight_zero_point``, its bias (if any) as a float buffer, and mark the layer uncalibrated.
        """
        self.bits, self.scheme = _check_bits(bits), scheme
        self.per_channel_axis = 0 if per_channel else None   # one scale per output
        q, scale, zero_point = quantize(layer.weight, bits, scheme, self.per_channel_axis)
        self.register_buffer("weight_q", q)
        self.register_buffer("weight_scale", scale)
        self.register_buffer("weight_zero_point", zero_point)
        if layer.bias is not None:
            self.register_buffer("bias", layer.bias.data.copy())
        else:
            self.bias = None
        self.calibrated = False

    def dequantized_weight(self) -> np.ndarray:
        """The float32 weight the integers stand for."""
        return dequantize(self.weight_q, self.weight_scale, self.weight_zero_point,
                          self.per_channel_axis)

    def calibrate(self, low: float, high: float) -> None:
        """Fix the input's 8-bit affine grid from an observed range [low, high] (static
        quantization); from then on every input is rounded to that grid before use."""
        _, scale, zero_point = quantize(np.array([low, high], np.float32), self.input_bits)
        self.register_buffer("input_scale", scale)
        self.register_buffer("input_zero_point", zero_point)
        self.calibrated = True

    def _input(self, x: np.ndarray) -> np.ndarray:
        """The input, rounded to the calibrated grid if there is one."""
        if not self.calibrated:
            return x
        q = _round_to_grid(x, self.input_scale.astype(np.float64), self.input_zero_point,
                           self.input_bits)
        return dequantize(q, self.input_scale, self.input_zero_point)

    def extra_repr(self) -> str:
        per = "per channel" if self.per_channel_axis is not None else "per tensor"
        static = ", static" if self.calibrated else ""
        return f"{self._shape_repr()}, bits={self.bits}, {self.scheme} {per}{static}"


class QuantizedLinear(_QuantizedLayer):
    """A Linear layer whose weight is stored as integers (see the module docstring).

    ``QuantizedLinear(linear, bits=8, per_channel=True, scheme="affine")`` quantizes a
    trained ``linear``; the original is not changed. ``compute`` chooses the forward pass:

    * ``"float"`` (default): dequantize the weight to float32, then the float matmul. The
      memory saving is in storage; the arithmetic is float32, as before.
    * ``"integer"``: also round the input to an 8-bit grid (the calibrated one, or else one
      fitted to each batch: dynamic quantization), multiply the integers with int32
      accumulation, and rescale once: out = scale_x * scale_w * (qx - zx) @ (qw - zw).T.
    """

    def __init__(self, linear: Linear, bits: int = 8, per_channel: bool = True,
                 scheme: str = "affine", compute: str = "float"):
        super().__init__()
        if not isinstance(linear, Linear):
            raise TypeError(f"QuantizedLinear quantizes a Linear; got {type(linear).__name__}")
        if compute not in ("float", "integer"):
            raise ValueError(f"QuantizedLinear: compute must be 'float' or 'integer'; "
                             f"got {compute!r}")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.compute = compute
        self._quantize_weight(linear, bits, per_channel, scheme)

    def forward(self, x) -> Tensor:
        """``x @ W.T + bias`` for ``x`` of shape (..., in_features), with W the quantized weight:
        integers accumulated in int32 then rescaled when ``compute == "integer"``, else the
        dequantized weight in float. Another last dimension raises ValueError naming the shape.
        """
        x = as_tensor(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"QuantizedLinear({self.in_features}, {self.out_features}) "
                             f"expected input with last dimension {self.in_features}, got "
                             f"shape {x.shape}")
        if self.compute == "integer":
            out = self._integer_matmul(x.data)
        else:
            out = self._input(x.data) @ self.dequantized_weight().T
        if self.bias is not None:
            out += self.bias
        return Tensor(out)

    def _integer_matmul(self, x: np.ndarray) -> np.ndarray:
        """``x @ W.T`` computed in integers: ``x`` quantized (with the calibrated input scale and
        zero point, or its own), ``(qx - zx) @ (qw - zw).T`` accumulated in int32, then scaled by
        both scales back to float. Weights of more than 8 bits raise ValueError.
        """
        if self.bits > 8:
            raise ValueError(f"QuantizedLinear: integer compute needs weights of at most 8 "
                             f"bits (int32 accumulation); these have {self.bits}")
        if self.calibrated:
            scale_x, zero_x = self.input_scale, self.input_zero_point
            qx = _round_to_grid(x, scale_x.astype(np.float64), zero_x, self.input_bits)
        else:
            qx, scale_x, zero_x = quantize(x, self.input_bits)
        zero_w = self.weight_zero_point.astype(np.int32)
        if self.per_channel_axis is not None:
            zero_w = zero_w[:, None]                            # one per row of weight_q
        # |qx - zx| <= 255 and |qw - zw| <= 255: in_features * 255^2 stays below 2^31.
        acc = np.matmul(qx.astype(np.int32) - np.int32(zero_x),
                        (self.weight_q.astype(np.int32) - zero_w).T)
        return acc.astype(np.float32) * (scale_x * self.weight_scale)

    def _shape_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class QuantizedConv2d(_QuantizedLayer):
    """A Conv2d whose weight is stored as integers, one scale per output channel by default;
    forward dequantizes it and runs the float ``conv2d``."""

    def __init__(self, conv: Conv2d, bits: int = 8, per_channel: bool = True,
                 scheme: str = "affine"):
        super().__init__()
        if not isinstance(conv, Conv2d):
            raise TypeError(f"QuantizedConv2d quantizes a Conv2d; got {type(conv).__name__}")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.padding = conv.kernel_size, conv.stride, conv.padding
        self._quantize_weight(conv, bits, per_channel, scheme)

    def forward(self, x) -> Tensor:
        x = as_tensor(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"QuantizedConv2d: expected input (N, {self.in_channels}, H, W); "
                             f"got shape {x.shape}")
        bias = None if self.bias is None else Tensor(self.bias)
        with no_grad():
            return conv2d(Tensor(self._input(x.data)), Tensor(self.dequantized_weight()), bias,
                          self.stride, self.padding)

    def _shape_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"


# ----------------------------------------------------------------------------- models
_QUANTIZED = ((Linear, QuantizedLinear), (Conv2d, QuantizedConv2d))


def _float_layers(model: Module) -> list:
    """``(parent, attribute name, layer)`` of every Linear and Conv2d inside ``model``."""
    found = []
    for parent in model.modules():
        for name, child in vars(parent).items():
            if isinstance(child, (Linear, Conv2d)):
                found.append((parent, name, child))
    return found


def _input_ranges(model: Module, layers: list, loader) -> dict:
    """The smallest and largest input each layer saw while ``model`` ran over ``loader``,
    recorded by forward pre-hooks (removed afterwards)."""
    ranges = {id(layer): [np.inf, -np.inf] for _, _, layer in layers}

    def record(layer, args):
        seen = ranges[id(layer)]
        values = as_tensor(args[0]).data
        seen[0], seen[1] = min(seen[0], values.min()), max(seen[1], values.max())

    handles = [layer.register_forward_pre_hook(record) for _, _, layer in layers]
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for batch in loader:
                model(batch[0] if isinstance(batch, (tuple, list)) else batch)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return ranges


def quantize_model(model: Module, calibration_loader=None, bits: int = 8,
                   per_channel: bool = True, scheme: str = "affine") -> Module:
    """A copy of ``model`` with every Linear and Conv2d replaced by its quantized version;
    ``model`` itself is not changed.

    Without ``calibration_loader`` only the weights are quantized (inputs stay float32).
    With one (an iterable of input batches, or of ``(inputs, targets)`` pairs), the copy is
    first run over it in eval mode to record each layer's input range, and each quantized
    layer then rounds its input to an 8-bit grid fitted to that range (static quantization).
    """
    _check_bits(bits)
    quantized = copy.deepcopy(model)
    layers = _float_layers(quantized)
    ranges = (_input_ranges(quantized, layers, calibration_loader)
              if calibration_loader is not None else {})
    for parent, name, layer in layers:
        cls = next(q for f, q in _QUANTIZED if isinstance(layer, f))
        replacement = cls(layer, bits=bits, per_channel=per_channel, scheme=scheme)
        if id(layer) in ranges:
            low, high = ranges[id(layer)]
            if low > high:
                raise ValueError("quantize_model: the calibration loader gave no batches")
            replacement.calibrate(low, high)
        setattr(parent, name, replacement)
    return quantized


def model_nbytes(model: Module) -> int:
    """Bytes of everything ``model`` stores: its parameters and its buffers (quantized
    weights, their scales and zero points, float biases, pruning masks), each once."""
    return (sum(p.data.nbytes for p in model.parameters())
            + sum(b.nbytes for b in model.buffers()))
