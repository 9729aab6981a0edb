"""Losses, the training loop and checkpoints."""

from dslgraph.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dslgraph.train.losses import bpr_loss, l2_penalty
from dslgraph.train.trainer import TrainConfig, Trainer, resolve_device

__all__ = [
    "CheckpointError",
    "TrainConfig",
    "Trainer",
    "bpr_loss",
    "l2_penalty",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
]
