"""Checkpoints written atomically: a crash mid-write never leaves a truncated file behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

REQUIRED_KEYS = ("model", "optimizer", "epoch", "config")


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not a dslgraph checkpoint."""


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Writes ``state`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Reads a checkpoint written by :func:`save_checkpoint`, with errors that name the problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises several types for corrupt files
        raise CheckpointError(
            f"checkpoint {path} could not be read ({exc.__class__.__name__}: {exc})"
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a dslgraph state dictionary")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}: not written by dslgraph's trainer")
    return state


def load_model_state(model: torch.nn.Module, state: dict[str, Any], path: str | os.PathLike) -> None:
    """Loads the ``"model"`` entry of the checkpoint ``state`` read from ``path`` into ``model``; a
    checkpoint of another model or dataset fails naming the file, not deep inside torch."""
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit this model or dataset: {exc}") from exc
