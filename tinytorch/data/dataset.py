"""Datasets: the samples a DataLoader draws batches from (chapter 05).

A dataset is anything with ``len(dataset)`` and ``dataset[i]``. ``TensorDataset`` holds whole
arrays and can also answer ``dataset[index_array]`` with a full batch in one numpy fancy-index
per array; it advertises that through ``__getitems__`` (PyTorch's name for batched fetching),
which the DataLoader uses instead of fetching and stacking samples one by one.
"""
from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor

__all__ = ["Dataset", "TensorDataset"]


class Dataset:
    """Base class: subclasses define ``__len__`` and ``__getitem__(i)`` returning one sample.

    A sample is usually a tuple of fields, e.g. ``(features, label)``; the DataLoader stacks
    each field across the samples of a batch.
    """

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__()")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__()")


class TensorDataset(Dataset):
    """Samples are rows (axis 0) of the given arrays: ``dataset[i] == (a[i], b[i], ...)``.

    Accepts Tensors or numpy arrays, stored as numpy arrays (no copy, dtypes kept) in
    ``.arrays``. All must have the same length along axis 0. Any numpy index works, so
    ``dataset[np.array([3, 1, 2])]`` returns the three-sample batch ``(a[[3, 1, 2]], ...)``.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor or array")
        arrays = []
        for position, t in enumerate(tensors):
            if isinstance(t, Tensor):
                t = t.data
            if not isinstance(t, np.ndarray):
                raise TypeError(f"TensorDataset: argument {position} must be a Tensor or a "
                                f"numpy array; got {type(t).__name__}")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: argument {position} is a scalar (shape ()); "
                                 f"samples are taken along axis 0, so it needs at least 1 dim")
            arrays.append(t)
        lengths = [len(a) for a in arrays]
        if len(set(lengths)) > 1:
            raise ValueError("TensorDataset: all tensors must have the same length along axis 0; "
                             f"got lengths {', '.join(map(str, lengths))}")
        self.arrays = tuple(arrays)

    def __len__(self) -> int:
        """The number of samples: the length of the first dimension shared by every array."""
        return len(self.arrays[0])

    def __getitem__(self, index) -> tuple:
        """A tuple with ``array[index]`` of each array, in the order they were given."""
        return tuple([a[index] for a in self.arrays])

    def __getitems__(self, indices) -> tuple:
        """A whole batch at once: one fancy-index per array, no loop over samples."""
        return self[np.asarray(indices)]

    def __repr__(self) -> str:
        fields = ", ".join(f"{a.dtype}{list(a.shape)}" for a in self.arrays)
        return f"TensorDataset({fields})"
