"""DataLoader: turn a dataset into an epoch of mini-batches of Tensors (chapter 05).

Shuffling is reproducible by construction: the sample order of an epoch is a pure function
of ``(seed, epoch)``, namely ``np.random.default_rng([seed, epoch]).permutation(n)``. The
loader counts epochs itself, and ``set_epoch`` (as PyTorch's DistributedSampler) lets a
resumed training run continue with exactly the order it would have seen.
"""
from __future__ import annotations

import numpy as np

from ..checks import is_int
from ..core.tensor import Tensor

__all__ = ["DataLoader"]


def _as_array(x) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _check_count(name: str, value, minimum: int) -> int:
    if not is_int(value) or value < minimum:
        kind = "a positive integer" if minimum == 1 else "a non-negative integer"
        raise ValueError(f"DataLoader: {name} must be {kind}; got {value!r}")
    return int(value)


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` samples.

    Each batch is a tuple of Tensors, one per field of a sample (``(inputs, targets)`` for a
    ``TensorDataset(X, y)``), with the dataset's dtypes kept and ``requires_grad=False``;
    a dataset whose samples are single arrays gives single Tensors. ``len(loader)`` is the
    number of batches: ``ceil(n / batch_size)``, or ``floor`` with ``drop_last=True``, which
    drops a last batch smaller than ``batch_size``.

    Order: without ``shuffle``, 0..n-1 every epoch. With it, ``sample_order(epoch)``. When
    ``seed`` is None a random seed is drawn once, here, and kept in ``loader.seed``.

    Epoch counter: ``loader.epoch`` is the epoch whose order the *next* iteration uses. It
    starts at 0; calling ``iter(loader)`` (the start of a ``for`` loop) fixes that epoch's
    order and then adds 1 at once, even if the loop stops early. ``set_epoch(e)`` makes the
    next iteration use epoch ``e``'s order.

    Batches of a dataset that defines ``__getitems__(indices)`` (TensorDataset does) are
    fetched with that one call; other datasets are read sample by sample and stacked.
    """

    def __init__(self, dataset, batch_size: int = 32, shuffle: bool = False,
                 drop_last: bool = False, seed: int | None = None):
        self.dataset = dataset
        self.batch_size = _check_count("batch_size", batch_size, minimum=1)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if seed is None:
            seed = int(np.random.default_rng().integers(2**32))
        self.seed = _check_count("seed", seed, minimum=0)
        self.epoch = 0

    def __len__(self) -> int:
        """The number of batches in one epoch: len(dataset) / batch_size rounded up, or down
        with ``drop_last`` (the incomplete last batch is dropped).
        """
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the sample order of ``epoch``."""
        self.epoch = _check_count("epoch", epoch, minimum=0)

    def sample_order(self, epoch: int) -> np.ndarray:
        """The indices of the samples in the order epoch ``epoch`` visits them."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def __iter__(self):
        """The batches of the next epoch, in :meth:`sample_order` of the current epoch, which
        this call advances (so each ``iter()`` starts a new epoch, even before the first batch).
        """
        order = self.sample_order(self.epoch)
        self.epoch += 1  # here, not lazily in the generator: iter() alone starts an epoch
        return self._batches(order)

    def _batches(self, order: np.ndarray):
        """Yield the batch of each consecutive ``batch_size`` slice of ``order`` (via
        :meth:`_fetch`); the last one may be smaller, or is dropped with ``drop_last``.
        """
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        fetch_batch = getattr(self.dataset, "__getitems__", None)  # looked up once per epoch
        for start in range(0, stop, self.batch_size):
            yield self._fetch(order[start:start + self.batch_size], fetch_batch)

    def _fetch(self, indices: np.ndarray, fetch_batch):
        """The batch of the samples at ``indices``: ``fetch_batch(indices)`` (the dataset's
        ``__getitems__``) when given, else each sample fetched and each field stacked along a
        new first axis; a tuple of Tensors for tuple samples, one Tensor otherwise.
        """
        if fetch_batch is not None:
            fields = fetch_batch(indices)
        else:
            samples = [self.dataset[int(i)] for i in indices]
            if isinstance(samples[0], (tuple, list)):
                fields = tuple(np.stack([_as_array(v) for v in field]) for field in zip(*samples))
            else:
                fields = np.stack([_as_array(s) for s in samples])
        # _as_array already gives the ndarray Tensor() would hold: wrap it without re-checking.
        if isinstance(fields, (tuple, list)):
            return tuple([Tensor._from_array(_as_array(f)) for f in fields])
        return Tensor._from_array(_as_array(fields))

    def __repr__(self) -> str:
        return (f"DataLoader(batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed}, epoch={self.epoch}, "
                f"batches={len(self)})")
