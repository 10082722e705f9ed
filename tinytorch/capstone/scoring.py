"""Capstone submissions (chapter 20): the JSON schema, writing one, scoring and ranking them.

A submission is two files side by side: a JSON document (:data:`SCHEMA`) and the checkpoint it
names, in the package's own format (``tinytorch.training.checkpoint``: an ``.npz`` archive,
written atomically, read without pickle). The document says

* ``task``: which :data:`~tinytorch.capstone.tasks.TASKS` entry it solves;
* ``learner``: who made it;
* ``budget``: ``max_bytes``, ``max_latency_ms`` and ``min_accuracy`` it aims for;
* ``model``: the ``architecture`` and ``quantization`` the scorer rebuilds the network from,
  the ``checkpoint`` file (a relative path inside the submission's folder) and its ``sha256``;
* ``recipe``: what was applied (quantization, pruning, fine-tuning, notes), for the reader;
* ``claimed`` (optional): numbers the learner measured. They are never used; the scorer
  reports where they disagree with its own measurements (bytes exactly, accuracy by more
  than 0.0005; a claimed latency is not compared: it belongs to the learner's machine).

:func:`score` trusts nothing in the document but the names: it checks the schema, the path and
the checksum, rebuilds the model, loads the held-out split itself (``task.held_out()``, never
data from the submission) and measures

* ``bytes``: :func:`~tinytorch.quantization.model_nbytes` of the rebuilt model;
* ``accuracy`` on the 360 held-out images;
* ``latency_ms``: the median time (``tinytorch.benchmark.Benchmark``, after a warm-up) of
  classifying a batch of :data:`LATENCY_BATCH` held-out images.

Each is checked against the stricter of the stated budget and the task's official one. The
score is the accuracy when every constraint passes, else 0. :func:`leaderboard` scores every
submission of a folder; an invalid one is listed with its error instead of stopping the rest.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .. import prune
from ..benchmark import Benchmark
from ..core.autograd import no_grad
from ..core.module import Module
from ..quantization import QuantizedConv2d, QuantizedLinear, model_nbytes, quantize_model
from ..training.checkpoint import load_checkpoint, save_checkpoint, write_text_atomically
from .tasks import TASKS, get_task

__all__ = ["SCHEMA", "FORMAT", "SubmissionError", "Constraint", "ScoreResult",
           "validate_submission", "write_submission", "load_submission", "score", "leaderboard",
           "rebuild_model", "model_spec", "load_model", "accuracy"]

FORMAT = "tinytorch-capstone-submission/1"
LATENCY_BATCH = 64          # images per timed forward pass
_TOLERANCE = {"bytes": 0, "accuracy": 5e-4, "latency_ms": None}  # latency claims: not compared

_BUDGET = {
    "type": "object", "required": ["max_bytes", "max_latency_ms", "min_accuracy"],
    "additionalProperties": False,
    "properties": {"max_bytes": {"type": "integer", "minimum": 1},
                   "max_latency_ms": {"type": "number", "exclusiveMinimum": 0},
                   "min_accuracy": {"type": "number", "minimum": 0, "maximum": 1}}}
_QUANTIZATION = {
    "oneOf": [{"type": "null"},
              {"type": "object", "required": ["bits", "per_channel", "scheme"],
               "additionalProperties": False,
               "properties": {"bits": {"type": "integer", "minimum": 2, "maximum": 16},
                              "per_channel": {"type": "boolean"},
                              "scheme": {"enum": ["affine", "symmetric"]}}}]}
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "TinyTorch capstone submission",
    "type": "object",
    "required": ["format", "task", "learner", "budget", "model", "recipe"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "task": {"enum": sorted(TASKS)},
        "learner": {"type": "string", "minLength": 1, "maxLength": 100},
        "budget": _BUDGET,
        "model": {
            "type": "object", "required": ["architecture", "quantization", "checkpoint",
                                           "sha256"],
            "additionalProperties": False,
            "properties": {"architecture": {"type": "object"},
                           "quantization": _QUANTIZATION,
                           "checkpoint": {"type": "string", "minLength": 1,
                                          "pattern": r"\.npz$"},
                           "sha256": _SHA256}},
        "recipe": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "quantization": _QUANTIZATION,
                "pruning": {"oneOf": [{"type": "null"}, {
                    "type": "object", "required": ["method", "amount"],
                    "additionalProperties": False,
                    "properties": {"method": {"enum": ["channels", "magnitude", "global"]},
                                   "amount": {"type": "number", "minimum": 0,
                                              "exclusiveMaximum": 1}}}]},
                "fine_tune_epochs": {"type": "integer", "minimum": 0},
                "notes": {"type": "string", "maxLength": 2000}}},
        "claimed": {
            "type": "object", "additionalProperties": False,
            "properties": {"bytes": {"type": "integer", "minimum": 0},
                           "accuracy": {"type": "number", "minimum": 0, "maximum": 1},
                           "latency_ms": {"type": "number", "minimum": 0}}},
    },
    # Each task has its own architecture: checked once the task is known.
    "allOf": [{"if": {"properties": {"task": {"const": name}}, "required": ["task"]},
               "then": {"properties": {"model": {"properties": {
                   "architecture": task.architecture_schema}}}}}
              for name, task in TASKS.items()],
}


class SubmissionError(ValueError):
    """A submission that cannot be scored; the message names the field or file at fault."""


# ----------------------------------------------------------------------------- validation
def _where(path) -> str:
    """``submission.model.checkpoint`` or ``submission.model.architecture.channels[1]``."""
    text = "submission"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def validate_submission(document) -> dict:
    """Check ``document`` (the parsed JSON) against :data:`SCHEMA`; return it. Raises
    SubmissionError listing every violation, each as ``<field>: <problem>``, e.g.
    ``submission.model.checkpoint: 5 is not of type 'string'``. Needs ``jsonschema``."""
    try:
        import jsonschema  # lazily: the core package needs only numpy
    except ImportError as error:
        raise ImportError("checking a capstone submission needs the 'jsonschema' package: "
                          "pip install jsonschema") from error
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(document), key=lambda e: (list(map(str, e.path)),
                                                                    e.message))
    if errors:
        raise SubmissionError("\n".join(f"{_where(e.absolute_path)}: {e.message}"
                                        for e in _deepest(errors)))
    return document


def _deepest(errors) -> list:
    """The errors, with a oneOf/if-then failure replaced by the errors inside it (which name
    the field), so the message says ``submission.model.quantization.bits: ...``."""
    found = []
    for error in errors:
        inner = [e for e in error.context or []                  # not "is not of type 'null'"
                 if not (e.validator == "type" and e.validator_value == "null")]
        found.extend(_deepest(sorted(inner, key=lambda e: list(map(str, e.path))))
                     if inner and error.validator in ("oneOf", "anyOf") else [error])
    return found


# ----------------------------------------------------------------------------- the model
def model_spec(task_name: str, state: dict) -> dict:
    """``{"architecture": ..., "quantization": ...}`` of a state dict of ``task_name``: the
    widths read from the weights' shapes, the quantization from ``weight_q`` and its scales
    (``per_channel`` when the scales are a vector). Everything the scorer needs to rebuild."""
    task = get_task(task_name)
    quantized = [key for key in state if key.endswith(".weight_q")]
    quantization = None
    if quantized:
        q, scale = np.asarray(state[quantized[0]]), np.asarray(
            state[quantized[0].replace("weight_q", "weight_scale")])
        quantization = {"bits": 8 if q.dtype == np.int8 else 16,
                        "per_channel": bool(scale.ndim == 1), "scheme": "affine"}
    return {"architecture": task.architecture_of(state), "quantization": quantization}


def rebuild_model(task_name: str, architecture: dict, quantization) -> Module:
    """The task's network with ``architecture``, quantized as ``quantization`` says (None:
    float), in eval mode: the empty frame the checkpoint's values are loaded into."""
    model = get_task(task_name).build(architecture)
    if quantization is not None:
        model = quantize_model(model, bits=quantization["bits"],
                               per_channel=quantization["per_channel"],
                               scheme=quantization["scheme"])
    return model.eval()


def _load_exactly(model: Module, state: dict, where: str) -> None:
    """``model.load_state_dict(state)``, refusing any name, shape or dtype that differs (an
    int16 weight loaded into an int8 buffer would wrap around silently)."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise SubmissionError(f"{where}: the checkpoint does not fit the stated architecture "
                              f"and quantization: missing {missing}, unexpected {unexpected}")
    for name, value in own.items():
        got = np.asarray(state[name])
        if got.shape != value.shape or got.dtype != value.dtype:
            raise SubmissionError(f"{where}: checkpoint entry '{name}' is {got.dtype}{got.shape}"
                                  f"; the stated model needs {value.dtype}{value.shape}")
    model.load_state_dict(state)


def load_model(task_name: str, checkpoint) -> Module:
    """The model saved in ``checkpoint`` (a file of ``save_checkpoint`` or
    ``Trainer.save_checkpoint``) for ``task_name``: its architecture and quantization read
    from the state dict (:func:`model_spec`), rebuilt and loaded, in eval mode."""
    state = load_checkpoint(checkpoint)["model"]
    spec = model_spec(task_name, state)
    model = rebuild_model(task_name, spec["architecture"], spec["quantization"])
    _load_exactly(model, state, f"checkpoint '{checkpoint}'")
    return model


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checkpoint_path(folder: Path, name: str) -> Path:
    """The checkpoint ``name`` inside ``folder``; absolute paths, ``..`` and links that
    leave the folder are refused."""
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or "\\" in name:
        raise SubmissionError(f"submission.model.checkpoint: {name!r} must be a relative path "
                              f"inside the submission's folder")
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise SubmissionError(f"submission.model.checkpoint: {name!r} leaves the submission's "
                              f"folder")
    if not path.is_file():
        raise SubmissionError(f"submission.model.checkpoint: {name!r} does not exist next to "
                              f"the submission")
    return path


def load_submission(path) -> tuple:
    """``(document, model)`` of the submission at ``path``: validated, checksum checked, the
    model rebuilt and loaded, in eval mode. Raises SubmissionError naming what is wrong."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SubmissionError(f"{path.name}: not a readable JSON file ({error})") from error
    validate_submission(document)
    spec = document["model"]
    checkpoint = _checkpoint_path(path.parent, spec["checkpoint"])
    digest = _sha256(checkpoint)
    if digest != spec["sha256"]:
        raise SubmissionError(f"submission.model.sha256: the checkpoint {spec['checkpoint']!r} "
                              f"has sha256 {digest}, not the {spec['sha256']} the submission "
                              f"states; it was changed after it was submitted")
    try:
        state = load_checkpoint(checkpoint)["model"]
        model = rebuild_model(document["task"], spec["architecture"], spec["quantization"])
    except (ValueError, KeyError, TypeError) as error:
        raise SubmissionError(f"submission.model: {error}") from error
    _load_exactly(model, state, "submission.model.checkpoint")
    return document, model


# ----------------------------------------------------------------------------- writing
def _permanent(model: Module) -> Module:
    """A copy of ``model`` whose pruning masks are made permanent (a plain weight again)."""
    model = copy.deepcopy(model)
    for module in model.modules():
        for name in [n[:-len("_mask")] for n in getattr(module, "_buffer_names", [])
                     if n.endswith("_mask")]:
            prune.remove(module, name)
    return model


def write_submission(model: Module, path, *, task: str, learner: str, recipe: dict | None = None,
                     budget: dict | None = None, claimed: dict | None = None) -> Path:
    """Write ``model`` as a submission: its checkpoint ``<stem>.npz`` beside the JSON ``path``
    (both atomically, the checkpoint first, so a JSON never names a half-written file).

    The architecture and quantization are read from the model itself (pruning masks are
    made permanent first), ``budget`` defaults to the task's official one and the document is
    validated and the model rebuilt from it before anything is written. Statically calibrated
    quantized layers are refused: the rebuilt model would not round its inputs. Returns
    ``path``."""
    path = Path(path)
    model = _permanent(model)
    if any(isinstance(m, (QuantizedLinear, QuantizedConv2d)) and m.calibrated
           for m in model.modules()):
        raise SubmissionError("write_submission: statically calibrated quantization is not "
                              "part of the submission format; quantize without a "
                              "calibration loader")
    state = model.state_dict()
    spec = model_spec(task, state)
    checkpoint = path.with_suffix(".npz")
    document = {"format": FORMAT, "task": task, "learner": learner,
                "budget": dict(budget or get_task(task).budget),
                "model": {**spec, "checkpoint": checkpoint.name, "sha256": "0" * 64},
                "recipe": dict(recipe or {})}
    if claimed is not None:
        document["claimed"] = dict(claimed)
    validate_submission(document)
    _load_exactly(rebuild_model(task, spec["architecture"], spec["quantization"]), state,
                  "write_submission")
    save_checkpoint({"model": state, "optimizer": {}, "trainer": {}}, checkpoint)
    document["model"]["sha256"] = _sha256(checkpoint)
    write_text_atomically(path, json.dumps(document, indent=2) + "\n")
    return path


# ----------------------------------------------------------------------------- scoring
@dataclass
class Constraint:
    """One line of the budget: ``measured`` against ``limit`` (at most, or at least)."""

    name: str
    measured: float
    limit: float
    at_most: bool
    passed: bool


@dataclass
class ScoreResult:
    """What :func:`score` measured. ``score`` is the accuracy when every constraint passed,
    else 0; ``disagreements`` lists claimed numbers that differ from the measured ones."""

    submission: str
    task: str
    learner: str
    bytes: int
    accuracy: float
    latency_ms: float
    sparsity: float
    budget: dict
    constraints: list = field(default_factory=list)
    disagreements: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.constraints)

    @property
    def score(self) -> float:
        return self.accuracy if self.passed else 0.0

    def failed(self) -> list:
        return [c.name for c in self.constraints if not c.passed]

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed, "score": self.score}


def accuracy(model: Module, X: np.ndarray, y: np.ndarray, batch_size: int = 500) -> float:
    """Fraction of ``X`` that ``model`` (in eval mode, no gradients) classifies as ``y``."""
    model.eval()
    with no_grad():
        predictions = np.concatenate([model(X[i:i + batch_size]).data.argmax(axis=1)
                                      for i in range(0, len(X), batch_size)])
    return float(np.mean(predictions == y))


def _sparsity(model: Module) -> float:
    """Fraction of exact zeros among the Linear and Conv2d weights (quantized ones included:
    0 is a grid point, so a pruned weight stays exactly 0)."""
    zeros = total = 0
    for module in model.modules():
        weight = (module.dequantized_weight()
                  if isinstance(module, (QuantizedLinear, QuantizedConv2d))
                  else getattr(getattr(module, "weight", None), "data", None))
        if isinstance(weight, np.ndarray):
            zeros, total = zeros + int(np.sum(weight == 0)), total + weight.size
    return zeros / total if total else 0.0


def _effective_budget(stated: dict, official: dict) -> dict:
    """The stricter of the two budgets, limit by limit."""
    return {"max_bytes": min(stated["max_bytes"], official["max_bytes"]),
            "max_latency_ms": min(stated["max_latency_ms"], official["max_latency_ms"]),
            "min_accuracy": max(stated["min_accuracy"], official["min_accuracy"])}


def score(path, *, warmup: int = 3, repeats: int = 15) -> ScoreResult:
    """Score the submission at ``path`` (see the module docstring): measured bytes,
    held-out accuracy and median latency, each against the budget. Raises SubmissionError
    when the submission is invalid or its checkpoint is not the one it names."""
    path = Path(path)
    document, model = load_submission(path)
    task = get_task(document["task"])
    X, y = task.held_out()                          # the scorer's own data, never the learner's
    measured = {"bytes": model_nbytes(model), "accuracy": accuracy(model, X, y)}
    batch = X[:LATENCY_BATCH]

    def forward():
        with no_grad():
            model(batch)

    timing = Benchmark(warmup=warmup, repeats=repeats).run(path.stem, forward)
    measured["latency_ms"] = timing.median * 1e3
    budget = _effective_budget(document["budget"], task.budget)
    constraints = [
        Constraint("bytes", measured["bytes"], budget["max_bytes"], True,
                   measured["bytes"] <= budget["max_bytes"]),
        Constraint("latency_ms", measured["latency_ms"], budget["max_latency_ms"], True,
                   measured["latency_ms"] <= budget["max_latency_ms"]),
        Constraint("accuracy", measured["accuracy"], budget["min_accuracy"], False,
                   measured["accuracy"] >= budget["min_accuracy"])]
    disagreements = []
    for name, claim in document.get("claimed", {}).items():
        tolerance = _TOLERANCE[name]
        if tolerance is not None and abs(claim - measured[name]) > tolerance:
            disagreements.append(f"claimed {name} {claim} but measured {measured[name]:.6g}")
    return ScoreResult(str(path), task.name, document["learner"], measured["bytes"],
                       measured["accuracy"], measured["latency_ms"], _sparsity(model), budget,
                       constraints, disagreements)


def leaderboard(folder, **score_options) -> list[dict]:
    """Every ``*.json`` submission of ``folder``, scored and ranked: within each task, the
    submissions that pass every constraint first, by score (accuracy), then fewer bytes, then
    the file name; then those that failed a constraint (score 0), fewer failed constraints
    first, then by accuracy; then the invalid ones, each with its error (never raised).
    Each row: ``rank`` (None when invalid), ``file``, ``task``,
    ``learner``, ``passed``, ``score``, ``bytes``, ``accuracy``, ``latency_ms``, ``failed``
    (the constraints missed) and ``error``."""
    rows = []
    for path in sorted(Path(folder).glob("*.json")):
        row = {"file": path.name, "task": None, "learner": None, "passed": False, "score": 0.0,
               "bytes": None, "accuracy": None, "latency_ms": None, "failed": [], "error": None}
        try:
            result = score(path, **score_options)
        except (SubmissionError, OSError, ValueError, KeyError, TypeError) as error:
            row["error"] = str(error).splitlines()[0]
        else:
            row.update(task=result.task, learner=result.learner, passed=result.passed,
                       score=result.score, bytes=result.bytes, accuracy=result.accuracy,
                       latency_ms=result.latency_ms, failed=result.failed())
        rows.append(row)
    valid = [r for r in rows if r["error"] is None]
    valid.sort(key=lambda r: (r["task"], not r["passed"], -r["score"], len(r["failed"]),
                              -r["accuracy"], r["bytes"], r["file"]))
    ranks = {}
    for row in valid:
        ranks[row["task"]] = ranks.get(row["task"], 0) + 1
        row["rank"] = ranks[row["task"]]
    invalid = [r for r in rows if r["error"] is not None]
    for row in invalid:
        row["rank"] = None
    return valid + invalid
