"""Chapter 05: Dataset, TensorDataset and DataLoader."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch import DataLoader, Dataset, Tensor, TensorDataset


def numbered_dataset(n: int) -> TensorDataset:
    """Sample i has features [i, 2i] (float32) and label i (int64), so a batch names its samples."""
    ids = np.arange(n)
    return TensorDataset(np.stack([ids, 2 * ids], axis=1).astype(np.float32), ids.astype(np.int64))


def epoch_labels(loader) -> np.ndarray:
    return np.concatenate([labels.data for _, labels in loader])


# --------------------------------------------------------------------------- TensorDataset
def test_tensor_dataset_item_is_a_tuple_of_rows():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([7, 8, 9, 10])
    features, label = TensorDataset(x, y)[2]
    np.testing.assert_array_equal(features, [6, 7, 8])
    assert label == 9


def test_tensor_dataset_accepts_tensors_and_keeps_dtypes():
    x = Tensor(np.ones((5, 2), dtype=np.float32))
    y = np.zeros(5, dtype=np.int64)
    dataset = TensorDataset(x, y)
    assert len(dataset) == 5
    assert [a.dtype for a in dataset.arrays] == [np.float32, np.int64]


def test_tensor_dataset_fancy_index_returns_the_batch():
    dataset = numbered_dataset(6)
    features, labels = dataset[np.array([3, 1, 2])]
    np.testing.assert_array_equal(labels, [3, 1, 2])
    np.testing.assert_array_equal(features, [[3, 6], [1, 2], [2, 4]])


def test_tensor_dataset_rejects_length_mismatch_naming_each_length():
    with pytest.raises(ValueError, match="lengths 100, 99"):
        TensorDataset(np.zeros((100, 3)), np.zeros(99))


def test_tensor_dataset_rejects_no_arrays():
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


def test_tensor_dataset_rejects_a_list():
    with pytest.raises(TypeError, match="argument 1 must be a Tensor or a numpy array; got list"):
        TensorDataset(np.zeros(3), [1, 2, 3])


def test_tensor_dataset_rejects_a_scalar_array():
    with pytest.raises(ValueError, match=r"argument 0 is a scalar \(shape \(\)\)"):
        TensorDataset(np.array(1.0))


def test_base_dataset_requires_subclasses_to_define_access():
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]
    with pytest.raises(NotImplementedError, match="__len__"):
        len(Dataset())


# --------------------------------------------------------------------------- batch counts
@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 120), batch_size=st.integers(1, 40), drop_last=st.booleans())
def test_batch_count_and_sizes(n, batch_size, drop_last):
    loader = DataLoader(numbered_dataset(n), batch_size=batch_size, drop_last=drop_last)
    full, remainder = divmod(n, batch_size)
    expected_sizes = [batch_size] * full + ([remainder] if remainder and not drop_last else [])
    assert len(loader) == (n // batch_size if drop_last else math.ceil(n / batch_size))
    assert [len(labels) for _, labels in loader] == expected_sizes
    assert len(loader) == len(expected_sizes)


@pytest.mark.parametrize("n, batch_size, drop_last, sizes", [
    (10, 5, False, [5, 5]),        # divisible: drop_last changes nothing
    (10, 5, True, [5, 5]),
    (10, 4, False, [4, 4, 2]),     # the last batch is smaller...
    (10, 4, True, [4, 4]),         # ...or dropped
    (3, 8, False, [3]),
    (3, 8, True, []),
])
def test_last_batch_is_smaller_without_drop_last_and_dropped_with_it(n, batch_size, drop_last,
                                                                      sizes):
    loader = DataLoader(numbered_dataset(n), batch_size=batch_size, drop_last=drop_last)
    assert [len(labels) for _, labels in loader] == sizes
    assert len(loader) == len(sizes)


def test_default_batch_size_is_32():
    assert DataLoader(numbered_dataset(100)).batch_size == 32
    assert len(DataLoader(numbered_dataset(100))) == 4


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8", True])
def test_batch_size_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match=rf"batch_size must be a positive integer; got {bad!r}"):
        DataLoader(numbered_dataset(4), batch_size=bad)


def test_seed_must_be_a_non_negative_integer():
    with pytest.raises(ValueError, match="seed must be a non-negative integer; got -3"):
        DataLoader(numbered_dataset(4), seed=-3)


# --------------------------------------------------------------------------- what a batch is
def test_batches_are_tensors_with_dtypes_kept_and_no_grad():
    inputs, targets = next(iter(DataLoader(numbered_dataset(10), batch_size=4)))
    assert isinstance(inputs, Tensor) and isinstance(targets, Tensor)
    assert inputs.dtype == np.float32 and targets.dtype == np.int64
    assert inputs.shape == (4, 2) and targets.shape == (4,)
    assert not inputs.requires_grad and not targets.requires_grad


def test_a_batch_has_one_tensor_per_dataset_field():
    dataset = TensorDataset(np.zeros((6, 2)), np.ones(6), np.arange(6))
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert isinstance(batch, tuple) and len(batch) == 3
    assert [t.shape for t in batch] == [(4, 2), (4,), (4,)]


def test_batch_rows_match_their_labels_after_shuffling():
    for features, labels in DataLoader(numbered_dataset(30), batch_size=7, shuffle=True, seed=3):
        np.testing.assert_array_equal(features.data[:, 0], labels.data)
        np.testing.assert_array_equal(features.data[:, 1], 2 * labels.data)


def test_tensor_dataset_batches_are_fetched_with_one_call_each():
    class CountingDataset(TensorDataset):
        calls = 0

        def __getitem__(self, index):
            CountingDataset.calls += 1
            return super().__getitem__(index)

    dataset = CountingDataset(np.zeros((100, 3)), np.zeros(100))
    loader = DataLoader(dataset, batch_size=10, shuffle=True, seed=0)
    list(loader)
    assert CountingDataset.calls == len(loader) == 10


class SquaresDataset(Dataset):
    """A generic dataset that builds each sample on request."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.array([i, i * i], dtype=np.float32), i


def test_generic_dataset_samples_are_stacked_into_batches():
    batches = list(DataLoader(SquaresDataset(), batch_size=3))
    assert [labels.shape for _, labels in batches] == [(3,), (3,), (1,)]
    features, labels = batches[1]
    np.testing.assert_array_equal(features.data, [[3, 9], [4, 16], [5, 25]])
    np.testing.assert_array_equal(labels.data, [3, 4, 5])
    assert features.dtype == np.float32 and labels.dtype == np.int64


def test_generic_dataset_of_single_arrays_gives_single_tensors():
    class Rows(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full(2, i, dtype=np.float64)

    batch = next(iter(DataLoader(Rows(), batch_size=2)))
    assert isinstance(batch, Tensor)
    np.testing.assert_array_equal(batch.data, [[0, 0], [1, 1]])


def test_generic_dataset_is_shuffled_like_a_tensor_dataset():
    generic = DataLoader(SquaresDataset(), batch_size=3, shuffle=True, seed=5)
    tensors = DataLoader(numbered_dataset(7), batch_size=3, shuffle=True, seed=5)
    np.testing.assert_array_equal(epoch_labels(generic), epoch_labels(tensors))


# --------------------------------------------------------------------------- order
def test_without_shuffle_the_order_is_0_to_n_minus_1_every_epoch():
    loader = DataLoader(numbered_dataset(23), batch_size=5)
    for _ in range(2):
        np.testing.assert_array_equal(epoch_labels(loader), np.arange(23))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 80), batch_size=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
def test_shuffled_epoch_visits_every_sample_exactly_once(n, batch_size, seed):
    loader = DataLoader(numbered_dataset(n), batch_size=batch_size, shuffle=True, seed=seed)
    for _ in range(2):
        np.testing.assert_array_equal(np.sort(epoch_labels(loader)), np.arange(n))


def test_shuffle_actually_reorders():
    order = epoch_labels(DataLoader(numbered_dataset(50), batch_size=8, shuffle=True, seed=0))
    assert not np.array_equal(order, np.arange(50))


def test_same_seed_and_epoch_give_the_same_order_in_separate_loaders():
    first = DataLoader(numbered_dataset(50), batch_size=8, shuffle=True, seed=42)
    second = DataLoader(numbered_dataset(50), batch_size=8, shuffle=True, seed=42)
    for _ in range(3):
        np.testing.assert_array_equal(epoch_labels(first), epoch_labels(second))


def test_order_is_the_documented_function_of_seed_and_epoch():
    loader = DataLoader(numbered_dataset(50), batch_size=8, shuffle=True, seed=42)
    for epoch in range(2):
        expected = np.random.default_rng([42, epoch]).permutation(50)
        np.testing.assert_array_equal(epoch_labels(loader), expected)


def test_different_epochs_give_different_orders():
    loader = DataLoader(numbered_dataset(50), batch_size=8, shuffle=True, seed=42)
    first, second = epoch_labels(loader), epoch_labels(loader)
    assert not np.array_equal(first, second)


def test_different_seeds_give_different_orders():
    a = DataLoader(numbered_dataset(50), batch_size=8, shuffle=True, seed=1)
    b = DataLoader(numbered_dataset(50), batch_size=8, shuffle=True, seed=2)
    assert not np.array_equal(epoch_labels(a), epoch_labels(b))


def test_epoch_counter_advances_when_an_iteration_starts():
    loader = DataLoader(numbered_dataset(10), batch_size=4, shuffle=True, seed=0)
    assert loader.epoch == 0
    batches = iter(loader)
    assert loader.epoch == 1      # already counted, before any batch is drawn
    next(batches)                 # an epoch abandoned early still counts
    list(loader)
    assert loader.epoch == 2


def test_set_epoch_reproduces_that_epochs_order():
    loader = DataLoader(numbered_dataset(40), batch_size=6, shuffle=True, seed=9)
    orders = [epoch_labels(loader) for _ in range(3)]
    loader.set_epoch(1)
    np.testing.assert_array_equal(epoch_labels(loader), orders[1])
    assert loader.epoch == 2


def test_set_epoch_lets_a_fresh_loader_resume_a_run():
    original = DataLoader(numbered_dataset(40), batch_size=6, shuffle=True, seed=9)
    orders = [epoch_labels(original) for _ in range(4)]
    resumed = DataLoader(numbered_dataset(40), batch_size=6, shuffle=True, seed=original.seed)
    resumed.set_epoch(2)
    np.testing.assert_array_equal(epoch_labels(resumed), orders[2])
    np.testing.assert_array_equal(epoch_labels(resumed), orders[3])


def test_set_epoch_rejects_a_negative_epoch():
    loader = DataLoader(numbered_dataset(4))
    with pytest.raises(ValueError, match="epoch must be a non-negative integer; got -1"):
        loader.set_epoch(-1)


def test_without_a_seed_one_is_drawn_and_exposed_so_the_order_is_reproducible():
    loader = DataLoader(numbered_dataset(30), batch_size=4, shuffle=True)
    assert isinstance(loader.seed, int) and loader.seed >= 0
    same = DataLoader(numbered_dataset(30), batch_size=4, shuffle=True, seed=loader.seed)
    np.testing.assert_array_equal(epoch_labels(loader), epoch_labels(same))


def test_sample_order_names_the_indices_of_an_epoch():
    loader = DataLoader(numbered_dataset(12), batch_size=5, shuffle=True, seed=4)
    expected = loader.sample_order(0)
    np.testing.assert_array_equal(epoch_labels(loader), expected)
    np.testing.assert_array_equal(DataLoader(numbered_dataset(12)).sample_order(3), np.arange(12))
