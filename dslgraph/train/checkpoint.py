"""Checkpoints written atomically: a crash mid-write never leaves a truncated file behind."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from dslgraph.data.io import save_then_rename

try:
    import fcntl

    msvcrt = None
except ImportError:  # Windows
    fcntl = None
    import msvcrt

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("model", "optimizer", "epoch", "config")


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not a dslgraph checkpoint."""


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Writes ``state`` to ``path`` through a temporary file and an atomic rename; a write that fails (a full
    disk) raises the :class:`OSError` naming ``path``."""
    return save_then_rename(state, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Reads a checkpoint written by :func:`save_checkpoint`, with errors that name the problem."""
    path = Path(path)
    try:  # a name too long or a folder not searchable: OSError, also in the handler naming how to resume
        is_dir, is_file = path.is_dir(), path.is_file()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} could not be read ({exc.strerror or exc})") from exc
    if is_dir:
        raise CheckpointError(f"checkpoint {path} is a folder; name the best.pt or last.pt in it")
    if not is_file:
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with open(path, "rb") as handle:  # zipfile.is_zipfile(path) reads an unreadable file as no zip
            is_zip = zipfile.is_zipfile(handle)
            # torch reads the stored tensors without their checksums: bytes damaged inside them (a
            # bad disk, a copy cut and patched) loaded as NaN or wrong weights without a word
            damaged = _damaged_entry(handle) if is_zip else None
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} could not be read ({exc.strerror or exc})") from exc
    if not is_zip:
        # torch would read it as a legacy pickle and advise weights_only=False, which runs any code in it
        raise CheckpointError(
            f"checkpoint {path} could not be read: it is not the zip archive torch.save writes "
            "(another file, or a truncated copy)"
        )
    if damaged is not None:
        raise CheckpointError(
            f"checkpoint {path} is damaged: its entry {damaged} fails its checksum (the file changed after "
            "it was written); use another copy, or the run's other checkpoint"
        )
    try:
        # weights_only: a checkpoint holds tensors and plain values only, and a foreign pickle named best.pt
        # must not run code when read
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt files
        raise CheckpointError(
            f"checkpoint {path} could not be read ({exc.__class__.__name__}: {exc})"
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a dslgraph state dictionary")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}: not written by dslgraph's trainer")
    check_entries(state, path, REQUIRED_KEYS)
    return state


#: What each entry of a checkpoint holds, as :meth:`~dslgraph.train.Trainer.state_dict` writes it: its types,
#: their description, and whether it is a number >= 0.
ENTRY_TYPES = {
    "model": (dict, "a dict", False),
    "optimizer": (dict, "a dict", False),
    "epoch": (int, "an int >= 0", True),
    "config": (dict, "a dict", False),
    "hooks": (list, "a list", False),
    "train_seconds": ((int, float), "a number >= 0", True),
    "history": (list, "a list", False),
    "best": ((dict, type(None)), "a dict or None", False),
    "bad_evals": (int, "an int >= 0", True),
}


def check_entries(state: dict[str, Any], path: str | os.PathLike, keys: tuple[str, ...]) -> None:
    """Raises a :class:`CheckpointError` naming the first of the entries ``keys`` of checkpoint ``state``
    that is not what :data:`ENTRY_TYPES` describes: an edited or foreign checkpoint failed later, deep in
    the run, as a ``TypeError`` naming neither (an ``epoch`` of ``"1"``), or resumed at epoch -1."""
    for key in keys:
        value, (types, what, count) = state[key], ENTRY_TYPES[key]
        # not value >= 0: NaN too
        if not isinstance(value, types) or isinstance(value, bool) or (count and not value >= 0):
            raise CheckpointError(
                f"checkpoint {path} holds {key}={_short(value)}, where dslgraph's trainer writes {what}; "
                "it was edited or not written by dslgraph"
            )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__}"


def _damaged_entry(handle) -> str | None:
    """The first entry of the zip archive open in ``handle`` whose bytes fail their CRC-32 (an archive
    whose directory cannot be read counts as damaged as a whole), or ``None``. An archive whose entries all
    record a CRC of 0 was written without them (``torch.serialization.set_crc32_options(False)``): nothing
    to check."""
    handle.seek(0)
    try:
        with zipfile.ZipFile(handle) as archive:
            if all(info.CRC == 0 for info in archive.infolist()):
                return None
            return archive.testzip()
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, zlib.error) as exc:
        return f"directory ({exc})"


def load_model_state(model: torch.nn.Module, state: dict[str, Any], path: str | os.PathLike) -> None:
    """Loads the ``"model"`` entry of the checkpoint ``state`` read from ``path`` into ``model``; a
    checkpoint of another model or dataset fails naming the file, not deep inside torch, and one whose
    parameters hold NaN or infinity (a training run stops before it writes such) fails naming the first:
    evaluated, it ranked every item level and reported 0 for every metric."""
    saved, parameters = state["model"], dict(model.named_parameters())
    for name, value in saved.items():
        weight = name in parameters and torch.is_tensor(value) and value.is_floating_point()
        if weight and not bool(torch.isfinite(value).all()):
            raise CheckpointError(
                f"checkpoint {path} holds non-finite values (NaN or infinity) in {name}: it was edited, or "
                "written by a run that diverged; dslgraph's trainer stops such a run before it saves"
            )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit this model or dataset: {exc}") from exc


#: The states that torch's optimizers keep one of per entry of their parameter, in its shape (Adafactor's
#: factored ``row_var`` / ``col_var`` are not).
ELEMENTWISE_STATES = frozenset(
    {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "exp_inf", "momentum_buffer", "square_avg", "grad_avg"}
    | {"acc_delta", "sum", "ax", "prev", "step_size"}
)


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, state: dict[str, Any], path: str | os.PathLike
) -> None:
    """Loads the ``"optimizer"`` entry of the checkpoint ``state`` read from ``path`` into ``optimizer``,
    whose parameters hold the checkpoint's model already. torch checks only the number of parameters: a
    moment of another shape (a sparse run's ``[280]`` for a dense ``[70, 8]`` table) was loaded, and Adam's
    next step wrote past it, crashing the process (a segmentation fault) or training on without a word.
    The states checked are :data:`ELEMENTWISE_STATES`, of torch's own optimizers (another may keep a state
    of one of those names in a shape of its own)."""
    saved = state["optimizer"]
    groups, moments = saved.get("param_groups"), saved.get("state")
    if not (isinstance(groups, list) and isinstance(moments, dict)):
        raise CheckpointError(f"checkpoint {path} holds no optimizer state_dict (param_groups and state)")
    params = [param for group in optimizer.param_groups for param in group["params"]]
    ids = [index for group in groups if isinstance(group, dict) for index in group.get("params", [])]
    torch_own = type(optimizer).__module__.startswith("torch.optim")
    for index, param in zip(ids, params) if torch_own else ():
        for name, value in (moments.get(index) or {}).items():
            if name in ELEMENTWISE_STATES and isinstance(value, torch.Tensor) and value.shape != param.shape:
                raise CheckpointError(
                    f"checkpoint {path} holds an optimizer state {name} of shape {list(value.shape)} for a "
                    f"parameter of shape {list(param.shape)}: it does not fit this model (a checkpoint of "
                    "another model, sparsity or backend, or an edited one)"
                )
    try:
        optimizer.load_state_dict(saved)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} holds an optimizer state that does not fit: {exc}") from exc


#: What a run writes to its output folder.
RUN_FILES = ("last.pt", "best.pt", "metrics.json")


def earlier_run_files(folder: str | os.PathLike) -> list[str]:
    """The files of :data:`RUN_FILES` that an earlier run left in ``folder``."""
    return [name for name in RUN_FILES if (Path(folder) / name).exists()]


def check_earlier_run(folder: str | os.PathLike, overwrite: bool, resume: str, afresh: str) -> list[str]:
    """The files an earlier run left in ``folder``, which a fresh run may replace only where ``overwrite``
    (written over one by one, they would mix both runs until it ends); else they are refused, the message
    saying how to ``resume`` the earlier run or start ``afresh`` (the CLI's flags or the trainer's
    arguments)."""
    earlier = earlier_run_files(folder)
    if earlier and not overwrite:
        # a run stopped in its first evaluation leaves best.pt and metrics.json, and no last.pt to resume from
        how = f"continue it with {resume}" if "last.pt" in earlier else "it wrote no last.pt to resume"
        raise CheckpointError(
            f"output folder {folder} holds an earlier run ({', '.join(earlier)}): {how}; start afresh "
            f"with {afresh}, or pass another output folder"
        )
    return earlier


def remove_run_files(folder: str | os.PathLike, names: list[str]) -> None:
    """Removes the files ``names`` (of :data:`RUN_FILES`) an earlier run left in ``folder``, all of them, so
    that none is left to mix with the run replacing it."""
    for name in names:
        (Path(folder) / name).unlink(missing_ok=True)
        log.info("removed the earlier run's %s", Path(folder) / name)


def make_output_folder(folder: str | os.PathLike) -> Path:
    """Creates the folder a run writes its checkpoints to: one that is a file or cannot be written to fails
    here, before any training, not at the first checkpoint."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"output folder {folder} is a file; name a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"output folder {folder} cannot be made ({exc.strerror or exc})") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(f"output folder {folder} cannot be written to")
    return folder


@contextlib.contextmanager
def locked_output(folder: str | os.PathLike) -> Iterator[Path]:
    """Creates the output folder ``folder`` and holds it for one run: a ``folder`` that is a file or cannot
    be written to fails here, before any training, and so does a second run writing to it at once (its
    checkpoints and metrics.json would overwrite the first one's). The lock goes with the process, however
    it ends. A run that fails before writing to a folder it made (bad settings, data that cannot be loaded,
    nothing to resume) removes it again."""
    made = [path for path in (Path(folder), *Path(folder).parents) if not path.exists()]
    folder = make_output_folder(folder)
    try:
        handle = open(folder / ".lock", "a")  # noqa: SIM115 (held until the run ends)
    except OSError as exc:
        raise CheckpointError(
            f"output folder {folder} cannot be used ({exc.strerror or exc}); --output must name a folder "
            "that can be written to"
        ) from exc
    with handle:
        if not _lock(handle):
            raise CheckpointError(
                f"output folder {folder} is in use by another dslgraph run; wait for it to end or pass "
                "another --output"
            )
        try:
            # holding the folder, any half-written file in it is a killed run's: removed, not kept forever
            for partial in folder.glob(".*.tmp-*"):
                partial.unlink(missing_ok=True)
            yield folder
        except BaseException:
            if made and [path.name for path in folder.iterdir()] == [".lock"]:
                if fcntl is None:  # Windows removes no file that is open: the PermissionError hid the failure
                    _unlock(handle)
                    handle.close()
                # elsewhere the lock is held until the lock file is gone: released first, another run could
                # take it in between, on a file then removed (a third run took the folder too), in a folder
                # then removed under it
                with contextlib.suppress(OSError):  # a folder another process wrote to meanwhile stays
                    (folder / ".lock").unlink()
                    for path in made:
                        path.rmdir()
            raise
        finally:
            _unlock(handle)


def _lock(handle) -> bool:
    """Locks the open file ``handle`` for this process without waiting, until it is closed (the process
    ends, however): whether it could, where another process holds it."""
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    # Windows: its first byte (past the end of the empty file, as Windows allows), from the file's start
    handle.seek(0)
    try:
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EDEADLOCK):
            raise
        return False
    return True


def _unlock(handle) -> None:
    """Releases the lock :func:`_lock` took on Windows, before ``handle`` is closed: Windows frees a lock
    left to the close only "depending upon available system resources", so that a run started right after
    (``--resume`` in a script, a second ``locked_output`` in one process) could be refused the folder as in
    use. Elsewhere the lock goes with the handle, closed after the lock file is removed (released before,
    another run could take the lock on a file then removed)."""
    if fcntl is not None or handle.closed:
        return
    with contextlib.suppress(OSError):  # not to hide the run's own error; the close frees the lock anyway
        handle.seek(0)  # locking() starts at the file position, as _lock did
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
