"""The training loop and checkpoints; the models' losses (:mod:`dslgraph.nn.losses`) re-exported."""

from dslgraph.nn.losses import bpr_loss, l2_penalty
from dslgraph.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_state,
    locked_output,
    save_checkpoint,
)
from dslgraph.train.trainer import TrainConfig, Trainer, make_adam, make_batches, resolve_device

__all__ = [
    "CheckpointError",
    "TrainConfig",
    "Trainer",
    "bpr_loss",
    "l2_penalty",
    "load_checkpoint",
    "load_model_state",
    "locked_output",
    "make_adam",
    "make_batches",
    "resolve_device",
    "save_checkpoint",
]
