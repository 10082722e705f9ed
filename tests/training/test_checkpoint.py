"""Checkpoints: exact resume, no pickle, exact path, atomic writes, refusing bad files; the
file format stores state dicts and knows nothing of the Trainer."""
import ast
import io
import json
import os
import pickle
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import CheckpointError, Trainer
from tinytorch.training import checkpoint as checkpoint_module

rng = np.random.default_rng(7)
X = rng.normal(size=(48, 6)).astype(np.float32)
Y = rng.integers(0, 3, size=48)


def build(seed, optimizer="adam", hidden=10, scheduler=True):
    """Fresh model, optimizer, trainer and loader; ``seed`` only changes the initial weights."""
    tt.manual_seed(seed)
    model = tt.Sequential(tt.Linear(6, hidden), tt.ReLU(), tt.Dropout(0.3), tt.Linear(hidden, 3))
    if optimizer == "adam":
        opt = tt.Adam(model.parameters(), lr=0.01)
    else:
        opt = tt.SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedule = tt.CosineSchedule(max_lr=0.05, min_lr=0.005, total_epochs=6) if scheduler else None
    trainer = Trainer(model, opt, tt.CrossEntropyLoss(), scheduler=schedule, grad_clip_norm=2.0)
    loader = tt.DataLoader(tt.TensorDataset(X, Y), batch_size=16, shuffle=True, seed=11)
    return trainer, loader


def snapshot(trainer):
    """Everything loading may change, copied."""
    opt = trainer.optimizer.state_dict()
    return {
        "model": {k: v.copy() for k, v in trainer.model.state_dict().items()},
        "optimizer": {**opt, "buffers": {k: v.copy() for k, v in opt["buffers"].items()}},
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler else None,
        "counters": (trainer.epoch, trainer.step, trainer.grad_clip_norm),
        "history": json.dumps(trainer.history),
        "generator": tt.get_rng_state(),
    }


def assert_same_snapshot(a, b):
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        np.testing.assert_array_equal(a["model"][k], b["model"][k])
    assert a["optimizer"]["buffers"].keys() == b["optimizer"]["buffers"].keys()
    for k in a["optimizer"]["buffers"]:
        np.testing.assert_array_equal(a["optimizer"]["buffers"][k], b["optimizer"]["buffers"][k])
    for key in ("hyper", "step", "param_steps"):
        assert a["optimizer"][key] == b["optimizer"][key]
    for key in ("scheduler", "counters", "history", "generator"):
        assert a[key] == b[key], key


@pytest.fixture
def trained(tmp_path):
    """A trainer after 2 epochs, its checkpoint saved at tmp_path / 'run.npz'."""
    trainer, loader = build(0)
    trainer.fit(loader, loader, epochs=2, verbose=False)
    path = tmp_path / "run.npz"
    trainer.save_checkpoint(path)
    return trainer, path


# ------------------------------------------------------------------ exact resume
@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum"])
def test_resuming_from_a_checkpoint_reproduces_the_uninterrupted_run(tmp_path, optimizer):
    straight, loader = build(0, optimizer)
    straight.fit(loader, loader, epochs=5, verbose=False)

    first, loader = build(0, optimizer)
    first.fit(loader, loader, epochs=2, verbose=False)
    first.save_checkpoint(tmp_path / "ckpt.npz")
    tt.manual_seed(123)  # disturb the shared generator, as a new process would
    resumed, fresh_loader = build(99, optimizer)  # other initial weights: loading must replace them
    resumed.load_checkpoint(tmp_path / "ckpt.npz")
    resumed.fit(fresh_loader, fresh_loader, epochs=3, verbose=False)

    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert (resumed.epoch, resumed.step) == (straight.epoch, straight.step) == (5, 15)
    assert resumed.history == straight.history


def test_without_loading_the_continued_run_differs(tmp_path):
    # Guards the test above: a fresh trainer trained 3 epochs does not match by accident.
    straight, loader = build(0)
    straight.fit(loader, loader, epochs=5, verbose=False)
    other, fresh_loader = build(99)
    other.epoch = 2
    other.fit(fresh_loader, epochs=3, verbose=False)
    assert not np.array_equal(straight.model.parameters()[0].data,
                              other.model.parameters()[0].data)


def test_loading_restores_counters_history_scheduler_clipping_and_generator(trained):
    trainer, path = trained
    expected = snapshot(trainer)
    tt.manual_seed(5)
    fresh, _ = build(3)
    fresh.grad_clip_norm = None
    fresh.scheduler.load_state_dict({"max_lr": 1.0, "min_lr": 0.5, "total_epochs": 50})
    fresh.load_checkpoint(path)
    assert_same_snapshot(snapshot(fresh), expected)


# ------------------------------------------------------------------ the file
def test_checkpoint_is_a_zip_of_npy_arrays_readable_without_pickle(trained):
    trainer, path = trained
    raw = path.read_bytes()
    assert raw[:1] != b"\x80"  # pickle's PROTO opcode
    assert raw[:4] == b"PK\x03\x04"
    with zipfile.ZipFile(path) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    with np.load(path, allow_pickle=False) as archive:
        contents = {key: archive[key] for key in archive.files}
    assert all(a.dtype != object for a in contents.values())
    assert {"model/0.weight", "model/0.bias", "model/3.weight", "model/3.bias"} <= set(contents)
    assert any(key.startswith("optim/") for key in contents)
    np.testing.assert_array_equal(contents["model/0.weight"],
                                  trainer.model.state_dict()["0.weight"])
    meta = json.loads(str(contents["meta"]))
    assert meta["version"] == 1 and meta["trainer"]["epoch"] == 2


def test_loading_never_calls_pickle(trained, monkeypatch):
    trainer, path = trained

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    fresh, _ = build(1)
    fresh.load_checkpoint(path)
    assert fresh.epoch == 2


@pytest.mark.parametrize("name", ["model.ckpt", "model", "model.npz", "weights.tar"])
def test_file_is_written_at_exactly_the_given_path(tmp_path, name):
    trainer, _ = build(0)
    trainer.save_checkpoint(tmp_path / name)
    assert os.listdir(tmp_path) == [name]
    fresh, _ = build(1)
    fresh.load_checkpoint(str(tmp_path / name))  # str paths too
    np.testing.assert_array_equal(fresh.model.parameters()[0].data,
                                  trainer.model.parameters()[0].data)


def test_saving_into_a_missing_folder_raises_naming_it(tmp_path):
    trainer, _ = build(0)
    with pytest.raises(FileNotFoundError, match="folder .*nowhere.* does not exist"):
        trainer.save_checkpoint(tmp_path / "nowhere" / "c.npz")


# ------------------------------------------------------------------ atomic writes
def crash_mid_write(file, arrays):
    file.write(b"PK\x03\x04 half of an archive")
    raise OSError("disk full")


def test_a_crash_mid_save_keeps_the_previous_checkpoint_and_leaves_no_temp_file(
        trained, monkeypatch):
    trainer, path = trained
    before = path.read_bytes()
    trainer.fit(build(0)[1], epochs=1, verbose=False)  # the state has changed since
    monkeypatch.setattr(checkpoint_module, "_write_archive", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint(path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]


def test_a_crash_during_the_first_save_leaves_nothing(tmp_path, monkeypatch):
    trainer, _ = build(0)
    monkeypatch.setattr(checkpoint_module, "_write_archive", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint(tmp_path / "first.npz")
    assert os.listdir(tmp_path) == []


def test_saving_again_replaces_the_checkpoint(trained):
    trainer, path = trained
    trainer.fit(build(0)[1], epochs=1, verbose=False)
    trainer.save_checkpoint(path)
    fresh, _ = build(1)
    fresh.load_checkpoint(path)
    assert fresh.epoch == 3
    assert os.listdir(path.parent) == [path.name]


# ------------------------------------------------------------------ refusing bad files
def refuses(path, fresh, match):
    """Loading ``path`` into ``fresh`` raises CheckpointError(match) and changes nothing."""
    before = snapshot(fresh)
    with pytest.raises(CheckpointError, match=match) as info:
        fresh.load_checkpoint(path)
    assert str(path) in str(info.value)
    assert_same_snapshot(snapshot(fresh), before)


def rewrite(path, change):
    """Rewrite the archive at ``path`` after ``change(arrays, meta)``, with plain np.savez."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    meta = json.loads(str(arrays.pop("meta")))
    change(arrays, meta)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    path.write_bytes(buffer.getvalue())


def test_a_truncated_checkpoint_is_refused(trained):
    _, path = trained
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 2])
    refuses(path, build(1)[0], "truncated or corrupt")


def test_a_file_that_is_not_an_archive_is_refused(trained):
    _, path = trained
    path.write_bytes(b"this is not a checkpoint at all")
    refuses(path, build(1)[0], r"is not an .npz \(zip\) archive")


def test_a_pickle_file_is_refused_without_being_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"model": 1}))
    refuses(path, build(1)[0], "is not an .npz")


def test_a_checkpoint_with_invalid_json_metadata_is_refused(trained):
    _, path = trained
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["meta"] = np.array("{not json")
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    refuses(path, build(1)[0], "metadata is not valid JSON")


def test_an_npz_without_metadata_is_refused(tmp_path):
    path = tmp_path / "plain.npz"
    with open(path, "wb") as file:
        np.savez(file, weights=np.ones(3))
    refuses(path, build(1)[0], "has no 'meta' string entry")


def test_a_checkpoint_of_another_format_version_is_refused(trained):
    _, path = trained
    rewrite(path, lambda arrays, meta: meta.update(version=99))
    refuses(path, build(1)[0], "format version 99; this tinytorch reads version 1")


def test_a_checkpoint_missing_a_parameter_is_refused(trained):
    _, path = trained
    rewrite(path, lambda arrays, meta: arrays.pop("model/3.bias"))
    refuses(path, build(1)[0], r"parameters missing from the checkpoint: \['3.bias'\]")


def test_a_checkpoint_of_another_architecture_is_refused_naming_the_shapes(trained):
    _, path = trained
    other, _ = build(1, hidden=7)
    refuses(path, other,
            r"'0.weight' has shape \(10, 6\) in the checkpoint but \(7, 6\) in the model")


def test_a_checkpoint_of_another_optimizer_is_refused(trained):
    _, path = trained
    refuses(path, build(1, optimizer="sgd_momentum")[0],
            "saved with a Adam optimizer; this trainer has a SGD")


def test_an_optimizer_buffer_of_the_wrong_shape_is_refused_before_the_model_changes(trained):
    _, path = trained

    def shrink(arrays, meta):
        arrays["optim/buffers/exp_avg.0"] = arrays["optim/buffers/exp_avg.0"][:3]

    rewrite(path, shrink)
    refuses(path, build(1)[0], "does not match the optimizer: .*exp_avg.0.* has shape")


def test_a_missing_optimizer_array_is_refused(trained):
    _, path = trained
    rewrite(path, lambda arrays, meta: arrays.pop("optim/buffers/exp_avg_sq.1"))
    refuses(path, build(1)[0], "array 'optim/buffers/exp_avg_sq.1' referenced by the metadata "
                               "is missing")


def test_a_checkpoint_with_a_scheduler_is_refused_by_a_trainer_without_one(trained):
    _, path = trained
    refuses(path, build(1, scheduler=False)[0],
            "saved with a CosineSchedule; this trainer has none")


def test_invalid_trainer_counters_are_refused(trained):
    _, path = trained
    rewrite(path, lambda arrays, meta: meta["trainer"].update(step=-4))
    refuses(path, build(1)[0], "counter 'step' must be a non-negative int; got -4")


def test_a_malformed_generator_state_is_refused(trained):
    _, path = trained
    rewrite(path, lambda arrays, meta: meta.update(generator={"bit_generator": "MT19937"}))
    refuses(path, build(1)[0], "generator state is for 'MT19937'")


def _spoiled_generator(change):
    state = tt.get_rng_state()
    change(state)
    return state


@pytest.mark.parametrize("generator, message", [
    ([1, 2, 3], r"generator state must be a dict .* got a list"),
    (_spoiled_generator(lambda s: s.update(state="seed")),
     r"generator state\['state'\] must be a dict with keys \['inc', 'state'\]; got a str"),
    (_spoiled_generator(lambda s: s["state"].update(inc="7")),
     r"generator state\['state'\]\['inc'\] must be an int in \[0, \d+\); got '7'"),
    (_spoiled_generator(lambda s: s["state"].pop("inc")),
     r"generator state\['state'\] must have the keys \['inc', 'state'\]; missing \['inc'\]"),
    (_spoiled_generator(lambda s: s.update(has_uint32=2.5)),
     r"generator state\['has_uint32'\] must be an int in \[0, 2\); got 2.5"),
])
def test_a_malformed_generator_state_gives_a_clear_error_naming_the_entry(
        trained, generator, message):
    _, path = trained
    rewrite(path, lambda arrays, meta: meta.update(generator=generator))
    refuses(path, build(1)[0], r"the trainer's state: " + message)


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        build(1)[0].load_checkpoint(tmp_path / "nothing.npz")


# ------------------------------------------------------------------ a format of state dicts
def test_the_format_imports_nothing_from_tinytorch():
    # So checkpoint.py and trainer.py cannot import each other: the format only stores dicts.
    tree = ast.parse(open(checkpoint_module.__file__, encoding="utf-8").read())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                if node.level or (node.module or "").startswith("tinytorch")]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names if alias.name.startswith("tinytorch")]
    assert imported == []


def test_a_checkpoint_holds_the_three_state_dicts_of_the_trainer(trained):
    trainer, path = trained
    state = checkpoint_module.load_checkpoint(path)
    assert set(state) == {"model", "optimizer", "trainer"}
    assert state["trainer"] == trainer.state_dict()
    expected = trainer.optimizer.state_dict()
    assert state["optimizer"].keys() == expected.keys()
    for key in expected["buffers"]:
        np.testing.assert_array_equal(state["optimizer"]["buffers"][key], expected["buffers"][key])
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(state["model"][name], value)


def test_the_format_round_trips_any_dict_of_state_dicts(tmp_path):
    state = {"model": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)},
             "optimizer": {"pair": (1, 2.5), "by_index": {0: np.ones(2)}, "names": ["a"]},
             "trainer": {"epoch": 3, "scheduler": None, "generator": {"seed": 1}}}
    checkpoint_module.save_checkpoint(state, tmp_path / "s.npz")
    loaded = checkpoint_module.load_checkpoint(tmp_path / "s.npz")
    np.testing.assert_array_equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["optimizer"]["pair"] == (1, 2.5) and loaded["optimizer"]["names"] == ["a"]
    np.testing.assert_array_equal(loaded["optimizer"]["by_index"][0], np.ones(2))
    assert loaded["trainer"] == state["trainer"]


@pytest.mark.parametrize("state, message", [
    ({"model": {}, "optimizer": {}}, r"keys \['model', 'optimizer', 'trainer'\].*got "
                                     r"\['model', 'optimizer'\]"),
    ({"model": {}, "optimizer": {}, "trainer": 3}, r"state\['trainer'\] must be a state dict"),
    ({"model": {}, "optimizer": {"lr": object()}, "trainer": {}}, "cannot store a object"),
])
def test_saving_a_malformed_state_raises_before_touching_the_disk(tmp_path, state, message):
    with pytest.raises(TypeError, match=message):
        checkpoint_module.save_checkpoint(state, tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


def test_a_checkpoint_written_before_the_state_dict_split_still_loads(trained):
    # The first writer also stored the model's and the optimizer's class names.
    trainer, path = trained

    def add_types(arrays, meta):
        meta["model"]["type"] = "Sequential"
        meta["optimizer"]["type"] = "Adam"

    rewrite(path, add_types)
    fresh, _ = build(1)
    fresh.load_checkpoint(path)
    assert fresh.state_dict() == trainer.state_dict()


# ------------------------------------------------------------------ killed saves
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAUSED_SAVE = r"""
import io, sys
import numpy as np
from tinytorch.training import checkpoint

original = checkpoint._write_archive

def half_then_wait(file, arrays):
    buffer = io.BytesIO()
    original(buffer, arrays)
    data = buffer.getvalue()
    file.write(data[:len(data) // 2])
    file.flush()
    print("paused", flush=True)     # mid-write: half of the archive is in the temporary file
    sys.stdin.readline()            # the test kills us here, or lets us finish
    file.write(data[len(data) // 2:])

checkpoint._write_archive = half_then_wait
weights = np.arange(1_000_000, dtype=np.float32)  # 4 MB
checkpoint.save_checkpoint({"model": {"w": weights}, "optimizer": {}, "trainer": {"epoch": 9}},
                           sys.argv[1])
print("saved", flush=True)
"""
posix_only = pytest.mark.skipif(os.name != "posix", reason="writer PIDs are probed on POSIX")


def small_state(epoch):
    return {"model": {"w": np.full(3, epoch, np.float32)}, "optimizer": {},
            "trainer": {"epoch": epoch}}


def start_paused_save(path):
    """A process saving a 4 MB checkpoint at ``path``, stopped halfway through writing it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", PAUSED_SAVE, str(path)], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "paused\n"
    return child


def temporaries(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


def killed_save(path):
    """Save a checkpoint at ``path``, then SIGKILL a second save of it halfway through."""
    checkpoint_module.save_checkpoint(small_state(1), path)
    child = start_paused_save(path)
    child.kill()  # SIGKILL: no exception handler, no cleanup
    child.wait()
    left = temporaries(path.parent)
    assert len(left) == 1 and left[0].startswith(f".{path.name}.pid{child.pid}@")
    assert os.path.getsize(path.parent / left[0]) > 1_000_000
    return left[0]


@posix_only
def test_the_next_load_removes_the_temporary_of_a_killed_save_and_reads_the_previous_one(
        tmp_path):
    path = tmp_path / "run.npz"
    killed_save(path)
    loaded = checkpoint_module.load_checkpoint(path)
    assert loaded["trainer"] == {"epoch": 1}
    np.testing.assert_array_equal(loaded["model"]["w"], small_state(1)["model"]["w"])
    assert os.listdir(tmp_path) == ["run.npz"]


@posix_only
def test_the_next_save_removes_the_temporary_of_a_killed_save(tmp_path):
    path = tmp_path / "run.npz"
    killed_save(path)
    checkpoint_module.save_checkpoint(small_state(2), path)
    assert os.listdir(tmp_path) == ["run.npz"]
    assert checkpoint_module.load_checkpoint(path)["trainer"] == {"epoch": 2}


@posix_only
def test_a_trainer_load_removes_the_temporary_of_a_killed_save_too(tmp_path):
    trainer, _ = build(0)
    path = tmp_path / "run.npz"
    trainer.save_checkpoint(path)
    child = start_paused_save(path)
    child.kill()
    child.wait()
    build(1)[0].load_checkpoint(path)
    assert os.listdir(tmp_path) == ["run.npz"]


@posix_only
def test_a_save_in_progress_is_never_touched_by_another_save_or_load(tmp_path):
    path = tmp_path / "run.npz"
    checkpoint_module.save_checkpoint(small_state(1), path)
    child = start_paused_save(path)
    in_progress = temporaries(tmp_path)
    assert checkpoint_module.load_checkpoint(path)["trainer"] == {"epoch": 1}
    checkpoint_module.save_checkpoint(small_state(2), path)
    assert temporaries(tmp_path) == in_progress  # its writer is alive
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.stdout.readline() == "saved\n" and child.wait() == 0
    assert checkpoint_module.load_checkpoint(path)["trainer"] == {"epoch": 9}
    assert os.listdir(tmp_path) == ["run.npz"]


def a_dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_which_temporaries_are_stale(tmp_path):
    host, day = checkpoint_module._host(), checkpoint_module.STALE_AFTER_SECONDS
    dead = a_dead_pid()
    files = {  # name: (seconds since last written, removed?)
        f".run.npz.pid{dead}@{host}.abcd1234.tmp": (5, os.name == "posix"),  # writer gone
        f".run.npz.pid{os.getpid()}@{host}.abcd1234.tmp": (5, False),          # writer alive
        f".run.npz.pid{os.getpid()}@{host}.efgh5678.tmp": (day + 60, True),   # untouched a day
        f".run.npz.pid{dead}@another-host.abcd1234.tmp": (5, False),          # can't probe it
        f".run.npz.pid{dead}@another-host.efgh5678.tmp": (day + 60, True),
        ".run.npz.abcd1234.tmp": (5, False),                                  # older naming
        ".run.npz.efgh5678.tmp": (day + 60, True),
        f".other.npz.pid{dead}@{host}.abcd1234.tmp": (day + 60, False),       # not this path's
        "run.npz.tmp": (day + 60, False),
        ".run.npz.notes.txt": (day + 60, False),
    }
    now = time.time()
    for name, (age, _) in files.items():
        (tmp_path / name).write_bytes(b"partial")
        os.utime(tmp_path / name, (now - age, now - age))
    removed = checkpoint_module.remove_stale_temporaries(tmp_path / "run.npz")
    assert sorted(removed) == sorted(name for name, (_, gone) in files.items() if gone)
    assert sorted(os.listdir(tmp_path)) == sorted(n for n, (_, gone) in files.items() if not gone)


def test_a_save_names_its_temporary_after_its_process_and_host(tmp_path, monkeypatch):
    seen = []
    original = checkpoint_module._write_archive

    def spy(file, arrays):
        seen.extend(temporaries(tmp_path))
        original(file, arrays)

    monkeypatch.setattr(checkpoint_module, "_write_archive", spy)
    checkpoint_module.save_checkpoint(small_state(1), tmp_path / "run.npz")
    assert len(seen) == 1
    assert seen[0].startswith(f".run.npz.pid{os.getpid()}@{checkpoint_module._host()}.")


# ------------------------------------------------------------------ directories
def test_loading_a_directory_says_it_is_a_directory(tmp_path):
    (tmp_path / "run.npz").mkdir()
    with pytest.raises(IsADirectoryError, match=r"run.npz' is a directory, not a checkpoint"):
        build(1)[0].load_checkpoint(tmp_path / "run.npz")


def test_saving_onto_a_directory_says_it_is_a_directory(tmp_path):
    (tmp_path / "run.npz").mkdir()
    with pytest.raises(IsADirectoryError, match=r"run.npz' is a directory; give the path"):
        build(0)[0].save_checkpoint(tmp_path / "run.npz")
    assert os.listdir(tmp_path / "run.npz") == []


# ------------------------------------------------------------------ write_atomically, shared
def test_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("old")
    checkpoint_module.write_text_atomically(path, "new ✓")
    assert path.read_text(encoding="utf-8") == "new ✓"
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_binary_writes_what_the_callback_writes(tmp_path):
    path = tmp_path / "blob.bin"
    checkpoint_module.write_atomically(path, lambda file: file.write(b"\x00\x01"), binary=True)
    assert path.read_bytes() == b"\x00\x01"


def test_a_failing_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("old")

    def half_then_crash(file):
        file.write("ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        checkpoint_module.write_atomically(path, half_then_crash)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["notes.txt"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_the_file_gets_the_usual_permissions_not_owner_only(tmp_path):
    mask = os.umask(0o022)
    try:
        path = tmp_path / "shared.txt"
        checkpoint_module.write_text_atomically(path, "x")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_the_temporary_is_named_with_the_given_prefix(tmp_path):
    seen = []
    checkpoint_module.write_atomically(
        tmp_path / "a.txt", lambda file: seen.extend(os.listdir(tmp_path)), prefix=".a.txt.mine.")
    assert len(seen) == 1 and seen[0].startswith(".a.txt.mine.") and seen[0].endswith(".tmp")
