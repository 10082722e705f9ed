"""Acceleration (chapter 17): the same operations written several ways, and the machine's
roofline to judge them against.

* :mod:`.matmul`: a matrix product as Python loops, broadcasting, einsum, and tiles;
* :mod:`.conv`: a convolution as Python loops and as one einsum over a window view (the
  package's ``conv2d`` is the im2col + BLAS version);
* :mod:`.roofline`: FLOPs and bytes of an operation from its shapes, arithmetic intensity,
  and the measured ceilings (matmul FLOP/s, memory bandwidth).

Not imported by ``tinytorch`` itself: ``from tinytorch import perf``.
"""
from . import conv, matmul, roofline
from .matmul import *
from .conv import *
from .roofline import *

__all__ = matmul.__all__ + conv.__all__ + roofline.__all__
