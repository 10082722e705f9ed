"""The course, chapter by chapter: which code a learner writes, and which tests grade it.

``CHAPTERS`` maps a chapter number ("01" … "09") to a :class:`Chapter`. Its ``stubs`` are
the functions and methods a student release hands out with their bodies replaced by
``raise NotImplementedError`` (see ``tools/release.py``): the algorithmic core the chapter
teaches — forward and backward rules, update rules, loops — never ``__repr__`` or pure
validation helpers. Each stub is written ``"<file>:<qualified name>"``, e.g.
``"tinytorch/training/schedule.py:CosineSchedule.get_lr"``.

The table names code by file and name, so it can rot when the package changes:
:func:`chapter_problems` lists every entry that no longer matches the repository, and
``tests/test_release.py`` runs it for every chapter.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Chapter", "CHAPTERS", "UnknownChapter", "get_chapter", "split_stub",
           "find_definition", "chapter_problems"]

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Chapter:
    """One chapter: its page, the package files the learner writes, the stubbed functions
    (``"<file>:<qualified name>"``, each in one of ``modules``) and the tests that grade it.
    Every path is relative to the repository root."""

    number: str
    name: str
    page: str
    modules: tuple[str, ...]
    stubs: tuple[str, ...]
    tests: tuple[str, ...]

    @property
    def title(self) -> str:
        return f"{self.number} {self.name}"


def _stubs(path: str, *qualnames: str) -> tuple[str, ...]:
    """``"<path>:<name>"`` for each name: the stubs of one file, without repeating it."""
    return tuple(f"{path}:{name}" for name in qualnames)


_TENSOR_PY, _AUTOGRAD_PY = "tinytorch/core/tensor.py", "tinytorch/core/autograd.py"
_MODULE_PY, _LAYERS_PY = "tinytorch/core/module.py", "tinytorch/core/layers.py"
_DATASET_PY, _DATALOADER_PY = "tinytorch/data/dataset.py", "tinytorch/data/dataloader.py"
_OPTIMIZER_PY, _SGD_PY, _ADAM_PY = ("tinytorch/optim/optimizer.py", "tinytorch/optim/sgd.py",
                        "tinytorch/optim/adam.py")
_SCHEDULE_PY, _CLIPPING_PY, _TRAINER_PY, _CHECKPOINT_PY = (
    "tinytorch/training/schedule.py", "tinytorch/training/clipping.py",
    "tinytorch/training/trainer.py", "tinytorch/training/checkpoint.py")
_CHAR_PY, _BPE_PY, _BPE_TRAIN_PY = ("tinytorch/text/char.py", "tinytorch/text/bpe.py",
                                    "tinytorch/text/bpe_train.py")
_EMBEDDING_PY, _OPS_PY = "tinytorch/core/embedding.py", "tinytorch/core/ops.py"
_ATTENTION_PY, _NORMALIZATION_PY = ("tinytorch/core/attention.py",
                                    "tinytorch/core/normalization.py")
_TRANSFORMER_PY, _GPT_PY = "tinytorch/models/transformer.py", "tinytorch/models/gpt.py"
_KV_CACHE_PY, _BENCHMARK_PY = "tinytorch/kv_cache.py", "tinytorch/benchmark.py"
_QUANTIZATION_PY = "tinytorch/quantization.py"
_PRUNE_PY, _COMPRESS_PY = "tinytorch/prune.py", "tinytorch/compress.py"
_RECIPE_PY = "tinytorch/capstone/recipe.py"

_FLOPS_PY, _TIMING_PY, _MEMORY_PY, _BREAKDOWN_PY = (
    "tinytorch/profiling/flops.py", "tinytorch/profiling/timing.py",
    "tinytorch/profiling/memory.py", "tinytorch/profiling/breakdown.py")
_MATMUL_PY, _CONV_PY, _ROOFLINE_PY = ("tinytorch/perf/matmul.py", "tinytorch/perf/conv.py",
                                      "tinytorch/perf/roofline.py")

CHAPTERS: dict[str, Chapter] = {c.number: c for c in (
    Chapter("01", "Tensor", "book/chapters/01_tensor.md",
            modules=(_TENSOR_PY,),
            stubs=_stubs(_TENSOR_PY, "_to_array", "Tensor.reshape", "Tensor.transpose",
                         "Tensor.sum", "Tensor.mean", "Tensor.__matmul__"),
            tests=("tests/core/test_tensor.py",)),
    Chapter("02", "Activations", "book/chapters/02_activations.md",
            modules=("tinytorch/core/activations.py",),
            stubs=_stubs("tinytorch/core/activations.py", "relu", "sigmoid", "tanh", "gelu",
                         "softmax", "log_softmax"),
            tests=("tests/core/test_activations.py",)),
    Chapter("03", "Layers", "book/chapters/03_layers.md",
            modules=(_MODULE_PY, _LAYERS_PY),
            stubs=_stubs(_MODULE_PY, "Module.named_parameters", "Module.modules", "Module.train",
                         "Module.state_dict", "Module.load_state_dict")
            + _stubs(_LAYERS_PY, "Linear.__init__", "Linear.forward", "Dropout.forward",
                     "Flatten.forward", "Sequential.forward", "MLP.__init__"),
            tests=("tests/core/test_layers.py",)),
    Chapter("04", "Losses", "book/chapters/04_losses.md",
            modules=("tinytorch/core/losses.py",),
            stubs=_stubs("tinytorch/core/losses.py", "mse_loss", "cross_entropy",
                         "binary_cross_entropy", "binary_cross_entropy_with_logits"),
            tests=("tests/core/test_losses.py",)),
    Chapter("05", "DataLoader", "book/chapters/05_dataloader.md",
            modules=(_DATASET_PY, _DATALOADER_PY),
            stubs=_stubs(_DATASET_PY, "TensorDataset.__len__", "TensorDataset.__getitem__")
            + _stubs(_DATALOADER_PY, "DataLoader.__len__", "DataLoader.sample_order",
                     "DataLoader.__iter__", "DataLoader._batches", "DataLoader._fetch"),
            tests=("tests/data/test_dataloader.py",)),
    Chapter("06", "Autograd", "book/chapters/06_autograd.md",
            modules=(_AUTOGRAD_PY, _TENSOR_PY),
            stubs=_stubs(_AUTOGRAD_PY, "_unbroadcast", "backward", "topological_order")
            + _stubs(_TENSOR_PY, "_sum_backward", "_max_backward", "_matmul_backward",
                     "_getitem_backward"),
            tests=("tests/core/test_autograd.py",)),
    Chapter("07", "Optimizers", "book/chapters/07_optimizers.md",
            modules=(_OPTIMIZER_PY, _SGD_PY, _ADAM_PY),
            stubs=_stubs(_OPTIMIZER_PY, "Optimizer.zero_grad", "Optimizer.step")
            + _stubs(_SGD_PY, "SGD._state_names", "SGD._update")
            + _stubs(_ADAM_PY, "Adam._state_names", "Adam._update"),
            tests=("tests/optim/test_optimizers.py",)),
    Chapter("08", "Training", "book/chapters/08_training.md",
            modules=(_SCHEDULE_PY, _CLIPPING_PY, _TRAINER_PY, _CHECKPOINT_PY),
            stubs=_stubs(_SCHEDULE_PY, "CosineSchedule.get_lr")
            + _stubs(_CLIPPING_PY, "clip_grad_norm", "clip_grad_value")
            + _stubs(_TRAINER_PY, "Trainer.train_epoch", "Trainer._optimizer_step",
                     "Trainer.evaluate", "Trainer.fit", "Trainer.state_dict")
            + _stubs(_CHECKPOINT_PY, "save_checkpoint", "load_checkpoint"),
            tests=("tests/training/test_schedule.py", "tests/training/test_clipping.py",
                   "tests/training/test_trainer.py", "tests/training/test_checkpoint.py")),
    Chapter("09", "Convolutions", "book/chapters/09_convolutions.md",
            modules=("tinytorch/core/spatial.py",),
            stubs=_stubs("tinytorch/core/spatial.py", "_output_hw", "_windows", "_col2im",
                         "conv2d", "max_pool2d", "avg_pool2d"),
            tests=("tests/core/test_spatial.py",)),
    Chapter("10", "Tokenization", "book/chapters/10_tokenization.md",
            modules=(_CHAR_PY, _BPE_PY, _BPE_TRAIN_PY),
            stubs=_stubs(_CHAR_PY, "CharTokenizer.from_text", "CharTokenizer.encode",
                         "CharTokenizer.decode")
            + _stubs(_BPE_PY, "pair_counts", "merge_pair", "BPETokenizer._encode_chunk",
                     "BPETokenizer.decode")
            + _stubs(_BPE_TRAIN_PY, "_best_pair", "learn_merges"),
            tests=("tests/text/test_tokenizers.py",)),
    Chapter("11", "Embeddings", "book/chapters/11_embeddings.md",
            modules=(_EMBEDDING_PY, _OPS_PY, _TENSOR_PY),
            stubs=_stubs(_EMBEDDING_PY, "_scatter_add_rows", "embedding", "Embedding.__init__",
                         "sinusoidal_encoding", "SinusoidalPositionalEncoding.forward",
                         "LearnedPositionalEmbedding.forward")
            + _stubs(_OPS_PY, "cat", "stack", "where")
            + _stubs(_TENSOR_PY, "Tensor.masked_fill"),
            tests=("tests/core/test_embedding.py", "tests/core/test_ops.py")),
    Chapter("12", "Attention", "book/chapters/12_attention.md",
            modules=(_ATTENTION_PY,),
            stubs=_stubs(_ATTENTION_PY, "_causal_mask", "_safe_softmax_",
                         "scaled_dot_product_attention", "MultiHeadAttention.forward",
                         "MultiHeadAttention._split_heads", "MultiHeadAttention._merge_heads",
                         "MultiHeadAttention._attend"),
            tests=("tests/core/test_attention.py",)),
    Chapter("13", "Transformers", "book/chapters/13_transformers.md",
            modules=(_NORMALIZATION_PY, _TRANSFORMER_PY, _GPT_PY),
            stubs=_stubs(_NORMALIZATION_PY, "layer_norm", "LayerNorm.__init__")
            + _stubs(_TRANSFORMER_PY, "FeedForward.forward", "TransformerBlock.forward")
            + _stubs(_GPT_PY, "GPT._init_weights", "GPT._hidden", "GPT.generate", "_sample"),
            tests=("tests/core/test_normalization.py", "tests/models/test_transformer_block.py",
                   "tests/models/test_gpt.py")),
    Chapter("14", "Profiling", "book/chapters/14_profiling.md",
            modules=(_FLOPS_PY, _TIMING_PY, _MEMORY_PY, _BREAKDOWN_PY),
            stubs=_stubs(_FLOPS_PY, "_op_flops", "count_flops", "FlopCount.by")
            + _stubs(_TIMING_PY, "time_call", "measure_latency")
            + _stubs(_MEMORY_PY, "peak_memory", "activation_bytes")
            + _stubs(_BREAKDOWN_PY, "op_breakdown"),
            tests=("tests/profiling/test_profiler.py",)),
    Chapter("15", "Quantization", "book/chapters/15_quantization.md",
            modules=(_QUANTIZATION_PY,),
            stubs=_stubs(_QUANTIZATION_PY, "quantize", "dequantize", "pack_int4", "unpack_int4",
                         "_QuantizedLayer._quantize_weight", "_QuantizedLayer.dequantized_weight",
                         "QuantizedLinear.forward", "QuantizedLinear._integer_matmul",
                         "_input_ranges", "quantize_model"),
            tests=("tests/optimization/test_quantization.py",)),
    Chapter("16", "Compression", "book/chapters/16_compression.md",
            modules=(_PRUNE_PY, _COMPRESS_PY),
            stubs=_stubs(_PRUNE_PY, "_apply_mask", "_keep_largest", "_install",
                         "l1_unstructured", "global_unstructured", "ln_structured", "remove")
            + _stubs(_COMPRESS_PY, "prune_channels", "low_rank_linear", "distillation_loss",
                     "distill"),
            tests=("tests/optimization/test_prune.py",
                   "tests/optimization/test_compress.py")),
    Chapter("17", "Acceleration", "book/chapters/17_acceleration.md",
            modules=(_MATMUL_PY, _CONV_PY, _ROOFLINE_PY),
            stubs=_stubs(_MATMUL_PY, "matmul_loops", "matmul_broadcast", "matmul_einsum",
                         "matmul_tiled")
            + _stubs(_CONV_PY, "conv2d_loops", "conv2d_windows")
            + _stubs(_ROOFLINE_PY, "matmul_cost", "conv2d_cost", "elementwise_cost",
                     "attainable", "measure_bandwidth"),
            tests=("tests/profiling/test_acceleration.py",)),
    Chapter("18", "Memoization", "book/chapters/18_memoization.md",
            modules=(_KV_CACHE_PY,),
            stubs=_stubs(_KV_CACHE_PY, "KVCache.update", "KVCache._reserve", "KVCache.crop"),
            tests=("tests/models/test_kv_cache.py",)),
    Chapter("19", "Benchmarking", "book/chapters/19_benchmarking.md",
            modules=(_BENCHMARK_PY,),
            stubs=_stubs(_BENCHMARK_PY, "bootstrap_ratio_ci", "Benchmark.run",
                         "Benchmark.compare"),
            tests=("tests/optimization/test_benchmark.py",)),
    Chapter("20", "Capstone", "book/chapters/20_capstone.md",
            modules=(_RECIPE_PY,),
            stubs=_stubs(_RECIPE_PY, "fine_tune", "prunable_layers", "shrink", "optimise"),
            tests=("tests/capstone/test_capstone.py",)),
)}


class UnknownChapter(ValueError):
    """A chapter number that is not in the table; the message lists the valid ones."""


def get_chapter(number) -> Chapter:
    """The chapter numbered ``number`` (8, "8" and "08" all mean chapter 08)."""
    key = str(number).strip()
    if key.isdigit():
        key = f"{int(key):02d}"
    if key not in CHAPTERS:
        valid = ", ".join(c.title for c in CHAPTERS.values())
        raise UnknownChapter(f"unknown chapter {str(number)!r}; valid chapters: {valid}")
    return CHAPTERS[key]


def split_stub(stub: str) -> tuple[str, str]:
    """``"tinytorch/x.py:Class.method"`` -> ``("tinytorch/x.py", "Class.method")``."""
    path, sep, qualname = stub.partition(":")
    if not sep or not path.endswith(".py") or not qualname:
        raise ValueError(f"stub {stub!r} is not of the form '<file>.py:<qualified name>'")
    return path, qualname


def find_definition(tree: ast.Module, qualname: str):
    """The ``def`` node of ``qualname`` ("f" or "Class.method", classes may nest) in
    ``tree``, looking only at class and module bodies. Raises LookupError when it is
    missing, is not a function, or is defined more than once (a property with a setter)."""
    body, node = tree.body, None
    parts = qualname.split(".")
    for depth, part in enumerate(parts):
        found = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                    ast.ClassDef)) and n.name == part]
        where = ".".join(parts[:depth]) or "the module"
        if not found:
            raise LookupError(f"{qualname}: no definition of {part!r} in {where}")
        if len(found) > 1:
            raise LookupError(f"{qualname}: {part!r} is defined {len(found)} times in {where}")
        node = found[0]
        body = node.body if isinstance(node, ast.ClassDef) else []
    if isinstance(node, ast.ClassDef):
        raise LookupError(f"{qualname}: is a class, not a function or method")
    return node


def chapter_problems(chapter: Chapter, root: Path = REPO_ROOT) -> list[str]:
    """Everything in ``chapter``'s entry that does not match the repository at ``root``:
    missing page, module or test files, stubs outside ``modules`` or not found in them."""
    root = Path(root)
    problems = [f"missing file {path}" for path in (chapter.page, *chapter.modules, *chapter.tests)
                if not (root / path).is_file()]
    trees = {}
    for stub in chapter.stubs:
        try:
            path, qualname = split_stub(stub)
        except ValueError as error:
            problems.append(str(error))
            continue
        if path not in chapter.modules:
            problems.append(f"stub {stub}: {path} is not one of the chapter's modules")
            continue
        if not (root / path).is_file():
            continue  # already reported
        if path not in trees:
            trees[path] = ast.parse((root / path).read_text(encoding="utf-8"), filename=path)
        try:
            find_definition(trees[path], qualname)
        except LookupError as error:
            problems.append(f"stub {path}:{error}")
    return problems
