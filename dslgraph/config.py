"""Validation of user-written settings (CLI flags and JSON config files), in one place.

:func:`validate` takes a flat mapping of field names to values, checks each against the table
:data:`FIELDS` and returns plain, typed values; a bad value fails here, naming the field and the
allowed range, before any data is loaded.

Settings a user leaves out come, in this order, from the preset of the (model, dataset) pair
(:data:`PRESETS`, e.g. UltraGCN's official per-dataset settings), the model's defaults
(:data:`MODEL_DEFAULTS`, the settings of the model's paper or of the DSL authors) and the
:data:`FIELDS` table. Model hyper-parameters beyond the common ones go in ``options`` (CLI:
``--option name=value``), checked against the model constructor's arguments and their types.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import json
import math
import numbers
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dslgraph.checks import is_count, is_sequence
from dslgraph.data.datasets import DATASETS, READ_OPTIONS
from dslgraph.data.protocols import PROTOCOLS
from dslgraph.data.sampling import SAMPLING_MODES
from dslgraph.metrics import METRICS, SAMPLED_METRICS
from dslgraph.metrics.ranking import metric_names_hint
from dslgraph.nn import MODELS
from dslgraph.nn.ultragcn import PRESETS as ULTRAGCN_PRESETS
from dslgraph.sparse.dsl import BACKENDS, DISTRIBUTIONS, GROWTH, MASK_INITS, OPTIMIZER_STATE
from dslgraph.sparse.schedules import SCHEDULES
from dslgraph.sparse.table import INITS

#: Settings of each model's paper (or of the DSL authors' code, REFERENCE.md §1) that differ from
#: the :data:`FIELDS` defaults; ``protocol`` is the evaluation its paper used.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "lightgcn": {},
    "ultragcn": {"lr": 1e-3, "batch_size": 1024, "reg_weight": 0.0, "eval_every": 5},
    "neumf": {"lr": 1e-3, "batch_size": 512, "reg_weight": 0.0, "epochs": 200, "eval_every": 5,
              "protocol": "leave-one-out", "update_interval": 2000},
    "convncf": {"lr": 1e-2, "batch_size": 512, "epochs": 200, "eval_every": 5,
                "protocol": "leave-one-out", "update_interval": 2000},
    "cdae": {"lr": 1e-2, "batch_size": 128, "reg_weight": 0.0, "epochs": 200, "eval_every": 5,
             "protocol": "held-out-users", "update_interval": 100},
    "multvae": {"lr": 1e-3, "batch_size": 16, "reg_weight": 0.0, "epochs": 200, "eval_every": 5,
                "protocol": "held-out-users", "update_interval": 100},
}  # fmt: skip

#: Settings of (model, dataset) pairs: UltraGCN's official configurations.
PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("ultragcn", dataset): {
        "lr": preset["lr"],
        "batch_size": preset["batch_size"],
        "embedding_dim": preset["embedding_dim"],
        "options": {k: v for k, v in preset.items() if k not in ("lr", "batch_size", "embedding_dim")},
    }
    for dataset, preset in ULTRAGCN_PRESETS.items()
}


@dataclass(frozen=True)
class Field:
    """One setting of :data:`FIELDS`: its type and default, and the values it allows (``choices``, a
    ``pattern``, or a range from ``low`` to ``high`` whose ends are excluded where ``low_open`` /
    ``high_open``); an ``optional`` one may also be :obj:`None`."""

    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    pattern: str | None = None  # what a text value matches whole; its choices then only show it
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    help: str = ""  # what the value means, where its type and range do not say it

    def describe(self) -> str:
        """What the field allows, as an error message says it: ``one of [...]``, ``an int in [1, inf)``."""
        if self.choices is not None:
            return f"one of {list(self.choices)}"
        if self.kind not in (int, float):
            return with_article(self.kind.__name__)
        left = "(" if self.low_open else "["
        right = ")" if self.high_open or self.high is None else "]"  # inf is no value a field takes
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{with_article(self.kind.__name__)} in {left}{low}, {high}{right}"


FIELDS: dict[str, Field] = {
    "dataset": Field(
        str, "lastfm", choices=(*DATASETS, "file"), help="a named dataset, or 'file' (data_file's)"
    ),
    "data_file": Field(
        str,
        None,
        optional=True,
        help="a delimited text file of one's own interactions (a header row naming its user and item "
        "columns), read instead of a named dataset; implies dataset 'file'",
    ),
    "data_options": Field(
        dict,
        {},
        help=f"how data_file is read and split: any of {list(READ_OPTIONS)} (docs: InteractionDataset)",
    ),
    "root": Field(
        str,
        None,
        optional=True,
        help="the folder holding <dataset>/raw/ (default $DSLGRAPH_HOME, else ~/.cache/dslgraph)",
    ),
    "model": Field(str, "lightgcn", choices=tuple(MODELS), help="the recommender (docs/models.md)"),
    "protocol": Field(
        str,
        "full",
        choices=PROTOCOLS,
        help="how the test split is ranked: against every item (full), one held-out interaction per user "
        "among sampled negatives (leave-one-out), or users never trained on (held-out-users)",
    ),
    "options": Field(dict, {}),
    "eval_negatives": Field(
        int,
        100,
        low=1,
        help="the sampled negatives each test (and validation) item is ranked among under leave-one-out",
    ),
    # model arguments most models share; None means the model's own default
    "embedding_dim": Field(int, None, low=1, optional=True, help="embedding width (default: the model's)"),
    "num_layers": Field(
        int, None, low=0, high=10, optional=True, help="LightGCN's propagation layers K (default: 3)"
    ),
    "init": Field(
        str, None, choices=INITS, optional=True, help="LightGCN's table initialisation (default: normal)"
    ),
    "init_std": Field(
        float,
        None,
        low=0,
        low_open=True,
        optional=True,
        help="std of the tables' normal init (default: the model's)",
    ),
    "epochs": Field(int, 1000, low=1, help="training epochs, over which the lr and DSL schedules run"),
    "batch_size": Field(int, 2048, low=1, help="training examples (or users) per optimizer step"),
    "sampling": Field(
        str,
        "edge",
        choices=SAMPLING_MODES,
        help="how an epoch's positives are drawn: every training interaction once (edge), or as many "
        "draws of a uniform user, then one of its items (user, LightGCN's sampler)",
    ),
    "lr": Field(float, 1e-3, low=0, low_open=True, help="Adam's learning rate"),
    "lr_schedule": Field(
        str, "none", choices=("none", "cosine"), help="constant lr (none), or annealed to lr_min (cosine)"
    ),
    "lr_min": Field(float, 1e-4, low=0, help="the lr that lr_schedule 'cosine' ends at"),
    "reg_weight": Field(
        float,
        1e-4,
        low=0,
        help="weight of the L2 penalty in the loss (docs/models.md; UltraGCN's is --option gamma)",
    ),
    "eval_every": Field(int, 10, low=1, help="evaluate (and checkpoint) every this many epochs"),
    "eval_batch_size": Field(int, 2048, low=1, help="users scored at once in an evaluation"),
    "ks": Field(list, [20], help="the cut-offs K of the metrics"),
    "monitor": Field(
        str,
        None,
        optional=True,
        help=f"METRIC@K picking the best epoch, METRIC one of {', '.join(METRICS)} (of "
        f"{', '.join(SAMPLED_METRICS)} under leave-one-out; default recall@K, hr@K under leave-one-out, K "
        "the first of ks)",
    ),
    "patience": Field(
        int,
        0,
        low=0,
        help="stop after this many evaluations without a better monitor value (0: never stop early)",
    ),
    "val_ratio": Field(
        float,
        0.0,
        low=0,
        high=1,
        high_open=True,
        help="the share held out for validation, which then picks the best epoch (0: the test split "
        "picks it); under leave-one-out any value > 0 holds out one more interaction per user, under "
        "held-out-users this share of the users",
    ),
    "seed": Field(  # the largest seed torch's generators take
        int,
        2020,
        low=0,
        high=2**64 - 1,
        help="seeds initialisation, sampling and masks, and the random splits of datasets and protocols "
        "unless split_seed is given",
    ),
    "split_seed": Field(
        int,
        None,
        low=0,
        high=2**64 - 1,
        optional=True,
        help="seeds the random splits of datasets and protocols alone (default: seed), so that runs of "
        "several seeds can share one split",
    ),
    # cuda:N as torch names one GPU of several
    "device": Field(
        str,
        "auto",
        choices=("auto", "cpu", "cuda", "cuda:N"),
        pattern=r"auto|cpu|cuda(:\d+)?",
        help="'auto' is the GPU where torch sees one, else the CPU (CPU and CUDA only: no MPS)",
    ),
    "max_seconds": Field(
        float,
        0.0,
        low=0,
        help="stop at the end of the first epoch past this much training time of the command, which a "
        "resumed run has anew (0: no limit)",
    ),
    "stop_after_epoch": Field(
        int,
        0,
        low=0,
        help="stop at the end of this epoch of the schedule, which stays laid out over epochs (the learning "
        "rate's and DSL's), as a resumed run goes on from it (0: train to epochs)",
    ),
    "checkpoint_every": Field(
        int,
        0,
        low=0,
        help="also write last.pt, which a resumed run goes on from, every this many epochs between "
        "evaluations (not best.pt nor metrics.json: an epoch not evaluated picks no best), so that a run "
        "killed between them loses fewer epochs (0: at evaluations only); acts with an output folder only",
    ),
    "compile": Field(
        bool,
        False,
        help="train with the model's loss compiled by torch.compile (its default compiler, inductor, which "
        "needs a C++ compiler on the CPU): faster or slower by model, backend and device (docs/dsl.md)",
    ),
    # past some thousands, OpenMP fails to start them or crashes the process with no message
    "threads": Field(int, 0, low=0, high=1024, help="torch's CPU threads (0: torch's default)"),
    # Dynamic Sparse Learning
    "sparsity": Field(
        float,
        0.0,
        low=0,
        high=1,
        high_open=True,
        help="the share of zero weights DSL keeps in its targets, a fraction (0.8, not 80; 0: dense, no DSL)",
    ),
    "targets": Field(
        list,
        None,
        optional=True,
        help="what DSL sparsifies: 'tables' and regular expressions of parameter names (default: the "
        "model's dsl_targets)",
    ),
    "update_interval": Field(
        int, 3000, low=1, help="iterations (optimizer steps) between mask updates (the paper's Delta T)"
    ),
    "schedule": Field(
        str,
        "cosine",
        choices=SCHEDULES,
        help="how the update fraction rho goes from rho0 to rho_min by t_end, else the run's end "
        "(constant: rho0 throughout)",
    ),
    "rho0": Field(
        float,
        0.5,
        low=0,
        high=1,
        help="the update fraction rho at the start: the share of active weights an update prunes and regrows",
    ),
    "rho_min": Field(float, 0.005, low=0, high=1, help="the update fraction rho at the end of the schedule"),
    "t_end": Field(
        int, None, low=1, optional=True, help="no mask update after this iteration (default: to the end)"
    ),
    "growth": Field(
        str,
        "gradient",
        choices=GROWTH,
        help="which inactive weights an update grows: by largest gradient, at random, or by largest momentum",
    ),
    "optimizer_state": Field(
        str,
        "reset",
        choices=OPTIMIZER_STATE,
        help="grown weights' optimizer state: restarted (reset, RigL) or left as it is (keep, the DSL "
        "authors' code)",
    ),
    "distribution": Field(
        str,
        "uniform",
        choices=DISTRIBUTIONS,
        help="the density of each target: the same for all (uniform), or Erdos-Renyi-kernel budgets (erk)",
    ),
    "mask_init": Field(
        str,
        "random",
        choices=MASK_INITS,
        help="embedding tables' first mask: random entries (DSL's), every row's first columns (aligned), "
        "or as many first columns as a row's degree asks (degree)",
    ),
    "backend": Field(
        str,
        "sparse",
        choices=BACKENDS,
        help="how sparse weights are held: active entries only (sparse; compact: without a cached "
        "propagation plan), or a dense weight times a mask (masked) (docs/dsl.md)",
    ),
    "skip_zero_gradient": Field(
        bool, False, help="grow only entries whose gradient is not zero (docs/dsl.md)"
    ),
    "static_mask": Field(bool, False, help="keep the initial mask (no prune and grow)"),
}


#: Why a device that torch knows but is not the CPU or CUDA (Apple's mps, Intel's xpu) is refused: torch has
#: no sparse CSR tensors on MPS, nor float64, and a run failed deep inside torch (at the graph's transfer, or
#: at the first epoch's float64 loss sum).
OTHER_DEVICES = (
    "dslgraph runs on 'cpu' and 'cuda' only: its sparse kernels (sparse CSR graph propagation, sparse "
    "embedding tables) and its float64 metrics have no MPS or other backend in torch; use 'cpu' (also on an "
    "Apple-silicon Mac) or 'auto'"
)

#: The settings that are paths of files or folders.
PATH_FIELDS = ("root", "data_file")


class ConfigError(ValueError):
    """A setting has a wrong name, type or value."""


def validate(values: dict[str, Any]) -> dict[str, Any]:
    """Returns every field of :data:`FIELDS`, defaults filled in, after checking ``values``."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        model = values.get("model", FIELDS["model"].default)
        hint = unknown_names_hint({name: name for name in unknown}, model, FIELDS)
        raise ConfigError(f"unknown setting(s) {unknown}{hint}; known settings are {sorted(FIELDS)}")
    if values.get("data_file") is not None and "dataset" not in values:
        values = values | {"dataset": "file"}
    model = _check("model", FIELDS["model"], values.get("model", FIELDS["model"].default))
    dataset = _check("dataset", FIELDS["dataset"], values.get("dataset", FIELDS["dataset"].default))
    preset = PRESETS.get((model, dataset), {})
    defaults = MODEL_DEFAULTS[model] | {key: value for key, value in preset.items() if key != "options"}
    out = {}
    for name, field in FIELDS.items():
        value = values.get(name, defaults.get(name, field.default))
        out[name] = None if value is None and field.optional else _check(name, field, value)
    given = _hoist_model_arguments(values, out)
    overridden = {arg for name, arg in MODEL_ARGUMENTS.items() if name in given}
    preset_options = {k: v for k, v in preset.get("options", {}).items() if k not in overridden}
    out["options"] = preset_options | out["options"]
    _check_model_arguments(out)
    _check_targets(out["targets"])
    _check_data_file(out)
    out["ks"] = _check_ks(out["ks"])
    _check_combinations(out)
    out["monitor"] = _checked_monitor(out)
    return out


#: What ``dslgraph train`` takes as flags only: where and how a run goes, not what it trains.
COMMAND_LINE_ONLY = ("config", "output", "resume", "overwrite", "no_progress")


def unknown_names_hint(
    names: dict[str, str], model: Any, known: Iterable[str], *, flags: bool = False, data_options: bool = True
) -> str:
    """What unknown settings or flags may stand for, each with its own hint: read options of data_file
    (where the command takes ``data_options``), flags of ``dslgraph train`` given as settings, arguments of
    ``model`` (as RecBole's flat config files give them, which go in options) or of other models, RecBole's
    names of the ``known`` settings or flags, or those spelt closest; ``""`` where none. ``names`` maps each
    unknown as it was given to its name as a setting: a config file's key to itself, or with ``flags``, a
    command line's flag (``--latent-dim``) to ``latent_dim``, the hints then speaking of flags. What both a
    config file's unknown settings and a command line's unknown flags are answered by."""
    # sep, user_col, ...: how data_file is read, which meanings would take for seed, ...
    read = [name for name in names.values() if data_options and name in READ_OPTIONS]
    # RecBole's names of them (USER_ID_FIELD, threshold: threads was the closest spelling)
    read_recbole = {
        name: ours for name in names.values() if data_options and (ours := recbole_name(name, READ_OPTIONS))
    }
    train_flags = [] if flags else [name for name in names.values() if name in COMMAND_LINE_ONLY]
    # RecBole's names of them (checkpoint_dir: output), which no setting is spelt like
    train_recbole = {
        name: ours for name in names.values() if not flags and (ours := recbole_name(name, COMMAND_LINE_ONLY))
    }
    rest = [
        given
        for given, name in names.items()
        if name not in [*read, *read_recbole, *train_flags, *train_recbole]
    ]
    arguments = {given: argument for given in rest if (argument := model_argument_meant(given, model))}
    elsewhere = {given: hint for given in rest if (hint := other_models_hint(given, model))}
    parts = []
    if (read or read_recbole) and flags:
        given = [f"{name}=VALUE" for name in read]
        given += [f"{ours}=VALUE (RecBole's {name})" for name, ours in read_recbole.items()]
        parts.append(f"read options of --data-file go in --data-option: {', '.join(given)}")
    else:
        if read:
            parts.append(f"{read} go in data_options")
        if read_recbole:
            given = ", ".join(f"{name!r} is {ours!r}" for name, ours in read_recbole.items())
            parts.append(f"RecBole's {given} in data_options")
    if train_flags:
        given = ", ".join("--" + name.replace("_", "-") for name in train_flags)
        parts.append(f"{given}: flags of dslgraph train, not settings")
    if train_recbole:
        given = ", ".join(f"{name!r} is --{ours.replace('_', '-')}" for name, ours in train_recbole.items())
        parts.append(f"RecBole's {given} here, a flag of dslgraph train, not a setting")
    if arguments and flags:
        given = " ".join(f"--option {argument}=VALUE" for argument in arguments.values())
        parts.append(f"model arguments go in --option: {given}")
    elif arguments:
        given = " ".join(
            f"--option {argument}=VALUE" + ("" if argument == name else f" (RecBole's {name})")
            for name, argument in arguments.items()
        )
        parts.append(f"arguments of model {model!r} go in options: {given}")
    parts += elsewhere.values()
    parts += meanings([given for given in rest if given not in arguments and given not in elsewhere], known)
    return f" ({'; '.join(parts)})" if parts else ""


def model_argument_meant(name: str, model: Any) -> str | None:
    """The argument of ``model``'s constructor that the unknown setting ``name`` (or flag: ``--latent-dim``)
    stands for, as it is spelt or as RecBole spells it (``dropout_prob``: ``dropout``); :obj:`None` where
    it names none, where it is RecBole's name of a setting (``embedding_size``), or where ``model`` is no
    model. What both a config file's and the command line's unknown names are answered by."""
    name = _setting_name(name)
    if not isinstance(model, str) or model not in MODELS or recbole_name(name, FIELDS) is not None:
        return None
    arguments = model_parameters(model)
    return name if name in arguments else recbole_name(name, arguments)


def other_models_hint(name: str, model: Any) -> str | None:
    """Where the unknown setting or flag ``name`` is no argument of ``model`` but one of other models
    (``latent_dim`` for LightGCN: Mult-VAE's), a hint naming them; else :obj:`None`."""
    if not isinstance(model, str) or model not in MODELS or model_argument_meant(name, model):
        return None
    others = [other for other in MODELS if model_argument_meant(name, other)]
    return f"{name!r} names an argument of model(s) {others}, not of {model!r}" if others else None


def _check_targets(targets: list | None) -> None:
    # an empty list would silently stand for the model's own targets
    if targets is not None and (not targets or not all(isinstance(t, str) and t for t in targets)):
        raise ConfigError(
            f"targets must be a non-empty list of 'tables' or regular expressions, got {targets!r}"
        )


def _check_combinations(settings: dict[str, Any]) -> None:
    """Refuses settings that are each in range but do not go together."""
    model, protocol = settings["model"], settings["protocol"]
    if protocol == "held-out-users" and not MODELS[model].folds_in:
        folding = sorted(name for name, cls in MODELS.items() if cls.folds_in)
        raise ConfigError(
            f"model {model!r} cannot be evaluated under protocol 'held-out-users': it scores a user by an "
            "embedding trained on that user, and held-out users are never trained on (their scores would be "
            f"those of untrained embeddings); use protocol 'full' or 'leave-one-out', or a model that folds "
            f"users in: {folding}"
        )
    if protocol != "leave-one-out" and settings["eval_negatives"] != FIELDS["eval_negatives"].default:
        raise ConfigError(
            f"eval_negatives acts under protocol 'leave-one-out' only, not {protocol!r}: leave it out"
        )
    check_stop_after_epoch(settings["stop_after_epoch"], settings["epochs"], ConfigError)
    if settings["rho_min"] > settings["rho0"]:
        raise ConfigError(f"rho_min ({settings['rho_min']}) must not exceed rho0 ({settings['rho0']})")
    lr, lr_min = settings["lr"], settings["lr_min"]
    if settings["lr_schedule"] == "cosine" and lr_min > lr:  # the cosine would raise the lr
        raise ConfigError(
            f"lr_min ({lr_min}) must not exceed lr ({lr}) under lr_schedule 'cosine', which anneals lr down "
            "to lr_min"
        )
    candidates = settings["eval_negatives"] + 1
    if protocol == "leave-one-out" and max(settings["ks"]) > candidates:  # else refused once data is loaded
        raise ConfigError(
            f"ks {settings['ks']} must not exceed {candidates} under protocol 'leave-one-out', which ranks "
            f"each test item among itself and eval_negatives={settings['eval_negatives']} sampled items; "
            "lower ks or raise eval_negatives"
        )


def check_stop_after_epoch(stop_after_epoch: int, epochs: int, error: type[Exception]) -> None:
    """Refuses a ``stop_after_epoch`` past ``epochs`` (raising ``error``): the schedule ends before it."""
    if stop_after_epoch > epochs:
        raise error(
            f"stop_after_epoch ({stop_after_epoch}) must not exceed epochs ({epochs}), where the schedule "
            "ends; set it to 0 (--stop-after-epoch 0, which a resumed run that stored it also takes) to "
            "train to epochs"
        )


def default_monitor(sampled: bool, ks: Sequence[int]) -> str:
    """The metric that picks the best epoch where none is given: the protocol's main metric (HR where the
    test items are ranked among sampled negatives, leave-one-out's; else recall) at the first of ``ks``.
    The CLI's default and :class:`~dslgraph.train.TrainConfig`'s ``monitor=None``."""
    return f"{'hr' if sampled else 'recall'}@{ks[0]}"


def _checked_monitor(settings: dict[str, Any]) -> str:
    """``monitor``, by default the protocol's main metric at the first of ``ks`` (:func:`default_monitor`),
    checked against what the protocol's evaluator reports."""
    monitor, protocol, ks = settings["monitor"], settings["protocol"], settings["ks"]
    if monitor is None:
        monitor = default_monitor(protocol == "leave-one-out", ks)
    metric, _, k = monitor.partition("@")
    metrics = SAMPLED_METRICS if protocol == "leave-one-out" else METRICS
    if metric not in metrics or k not in map(str, ks):  # not '020', nor other digits than 0-9
        raise ConfigError(
            f"monitor must be '<{'|'.join(metrics)}>@K' with K in ks={ks} under protocol {protocol!r}, "
            f"got {monitor!r}{metric_names_hint([monitor], metrics)}"
        )
    return monitor


#: The top-level settings that are model constructor arguments when given, and their names there.
MODEL_ARGUMENTS = {
    "embedding_dim": "embedding_dim",
    "num_layers": "num_layers",
    "init": "init",
    "init_std": "std",
}


def _hoist_model_arguments(values: dict[str, Any], out: dict[str, Any]) -> set[str]:
    """Moves a model argument of :data:`MODEL_ARGUMENTS` given in ``options`` to its top-level setting
    of ``out`` (one place for each, whichever way it was given); returns the top-level names given."""
    given = {name for name in MODEL_ARGUMENTS if values.get(name) is not None}
    out["options"] = dict(out["options"])
    for name, arg in MODEL_ARGUMENTS.items():
        if arg not in out["options"]:
            continue
        value = out["options"].pop(arg)
        if name in given and value != values[name]:
            raise ConfigError(
                f"{name} is given twice, as {name}={values[name]!r} and as options.{arg}={value!r}; "
                "give it once"
            )
        out[name] = _check(f"options.{arg}", FIELDS[name], value)
        given.add(name)
    return given


def model_arguments(settings: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the model constructor that ``settings`` give."""
    given = {arg: settings[name] for name, arg in MODEL_ARGUMENTS.items() if settings[name] is not None}
    return given | settings["options"]


def _check_model_arguments(settings: dict[str, Any]) -> None:
    """Checks that every model argument is one the model takes, with its default's type; the values in
    ``settings["options"]`` are replaced by their plain Python values (``np.int64(5)`` as ``5``)."""
    accepted = model_parameters(settings["model"])
    for name, value in model_arguments(settings).items():
        if name not in accepted:
            raise ConfigError(
                f"{name} is not an argument of model {settings['model']!r}{did_you_mean([name], accepted)}; "
                f"it takes {sorted(accepted)}"
            )
        default = accepted[name]
        if isinstance(default, (tuple, list)) and default and is_sequence(value):
            value = [_plain(v, type(default[0])) for v in value]
        elif default is not None:
            value = _plain(value, type(default))
        elif isinstance(value, str | os.PathLike):  # UltraGCN's cache_dir: a Path (or np.str_) went into
            value = str(os.fspath(value))  # the checkpoints' settings, refused as metadata at the start
        elif value is not None:  # cache_dir, the one argument without a default's type, failed after the
            # data had loaded
            raise ConfigError(f"{name} of model {settings['model']!r} must be a path (text), got {value!r}")
        if name in settings["options"]:
            settings["options"][name] = value
        sequences = isinstance(default, (tuple, list)) and isinstance(value, (tuple, list))
        if default is not None and type(value) is not type(default) and not sequences:
            raise ConfigError(
                f"{name} of model {settings['model']!r} must be {_described(default)} "
                f"(like its default {_shown(default)}), got {value!r}"
            )
        if sequences and default and any(type(v) is not type(default[0]) for v in value):
            raise ConfigError(
                f"{name} of model {settings['model']!r} must be a list of {type(default[0]).__name__} "
                f"(like its default {list(default)!r}), got {value!r}"
            )


def model_parameters(model: str) -> dict[str, Any]:
    """The arguments of ``model``'s constructor that settings may give, with their defaults."""
    parameters = inspect.signature(MODELS[model]).parameters
    return {name: p.default for name, p in parameters.items() if name not in ("num_users", "num_items")}


def with_article(noun: str) -> str:
    """``noun`` after its indefinite article: ``an int``, ``a float``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


#: RecBole's names of settings and model arguments (the keys of its config files) that dslgraph names
#: otherwise, and which spelling alone leads nowhere or astray (train_batch_size is closest to
#: eval_batch_size, data_path to data_options); of several, the first that the command or model takes
#: (mlp_hidden_size is NeuMF's mlp_layers and Mult-VAE's hidden_channels). NeuMF's GMF width is RecBole's
#: mf_embedding_size and dslgraph's embedding_dim; RecBole's MLP tables (mlp_embedding_size wide) and hidden
#: widths (mlp_hidden_size) are dslgraph's one mlp_layers, [2 * mlp_embedding_size, *mlp_hidden_size]. Its
#: names of metrics are :data:`~dslgraph.metrics.ranking.RECBOLE_METRICS`.
RECBOLE_NAMES: dict[str, tuple[str, ...]] = {
    "learning_rate": ("lr",),
    "train_batch_size": ("batch_size",),
    "embedding_size": ("embedding_dim",),
    "topk": ("ks", "k"),  # recommend's -k
    "valid_metric": ("monitor",),
    "eval_step": ("eval_every",),
    "stopping_step": ("patience",),
    "n_layers": ("num_layers",),
    "data_path": ("root",),
    "gpu_id": ("device",),
    "use_gpu": ("device",),
    "mf_embedding_size": ("embedding_dim",),
    "mlp_embedding_size": ("mlp_layers",),
    "mlp_hidden_size": ("mlp_layers", "hidden_channels"),
    "dropout_prob": ("dropout",),
    "latent_dimension": ("latent_dim",),
    "corruption_ratio": ("corruption",),
    "cnn_channels": ("channels",),
    "negative_num": ("num_negatives",),
    "ii_neighbor_num": ("num_neighbors",),
    "lambda": ("lambda_",),
    "checkpoint_dir": ("output",),
    # how a file is read: READ_OPTIONS, data_options' keys
    "field_separator": ("sep",),
    "USER_ID_FIELD": ("user_col",),
    "ITEM_ID_FIELD": ("item_col",),
    "RATING_FIELD": ("rating_col",),
    "TIME_FIELD": ("time_col",),
    "user_inter_num_interval": ("min_user_interactions",),
    "item_inter_num_interval": ("min_item_interactions",),
}


#: RecBole's settings of :data:`RECBOLE_NAMES` whose values count otherwise, and how theirs stand to
#: dslgraph's: stopping_step N stops after N + 1 evaluations without a gain, as patience N + 1 does.
RECBOLE_VALUES: dict[str, tuple[str, str]] = {"stopping_step": ("N", "N + 1")}


#: RecBole's names of settings that dslgraph has no setting for, and what stands in their place.
RECBOLE_ABSENT: dict[str, str] = {
    "metrics": (
        f"every evaluation reports all of {list(METRICS)} at each of ks, and {list(SAMPLED_METRICS)} under "
        "leave-one-out"
    ),
    "neg_sampling": (
        "training draws uniform negatives among each user's unseen items, as many per positive as the model "
        "takes: 1, NeuMF 4, UltraGCN its num_negatives argument, CDAE and Mult-VAE none; sampling says how "
        "the positives are drawn, not the negatives"
    ),
    "eval_args": (
        "the test split is the dataset's own (a data_file's by data_options' split and test_ratio), "
        "val_ratio holds out validation, and protocol ranks it: full, leave-one-out among eval_negatives "
        "sampled items, or held-out-users"
    ),
    "threshold": (
        "RecBole labels interactions by it; data_options' rating_threshold, with rating_col, keeps only "
        "those rated at or above it"
    ),
}
RECBOLE_ABSENT["train_neg_sample_args"] = RECBOLE_ABSENT["neg_sampling"]


#: The flags of the LightGCN authors' code (LightGCN-PyTorch's ``parse.py``) that dslgraph names otherwise,
#: and which spelling alone leads astray (recdim to resume, decay to device, testbatch to batch_size); decay
#: weighs the same ½ Σ‖e‖² / B as reg_weight, and path is where that code saves its weights.
LIGHTGCN_NAMES: dict[str, tuple[str, ...]] = {
    "bpr_batch": ("batch_size",),
    "recdim": ("embedding_dim",),
    "layer": ("num_layers",),
    "decay": ("reg_weight",),
    "testbatch": ("eval_batch_size",),
    "topks": ("ks",),
    "path": ("output",),
}


def _setting_name(name: str) -> str:
    """A setting's name as a flag may spell it: ``--learning-rate`` is ``learning_rate``."""
    return name.removeprefix("--").replace("-", "_")


def recbole_name(
    name: str, known: Iterable[str], foreign: dict[str, tuple[str, ...]] = RECBOLE_NAMES
) -> str | None:
    """The name among ``known`` of what RecBole names ``name`` (:data:`RECBOLE_NAMES`, or the ``foreign``
    names of another code: :data:`LIGHTGCN_NAMES`), spelt as a flag where ``name`` is one
    (``--learning-rate``: ``--lr``), or :obj:`None`."""
    flag = name.startswith("--")
    for ours in foreign.get(_setting_name(name), ()):
        spelt = ("-" if len(ours) == 1 else "--") + ours.replace("_", "-") if flag else ours
        if spelt in known:
            return spelt
    return None


def meanings(names: list[str], known: Iterable[str]) -> list[str]:
    """What the unknown ``names`` may have meant among ``known``: RecBole's and the LightGCN code's names of
    them (with how the values differ, :data:`RECBOLE_VALUES`), what stands in for RecBole's settings that
    have none here (:data:`RECBOLE_ABSENT`), the names in lower case, then the names spelt closest."""
    known = list(known)
    recbole = {name: ours for name in names if (ours := recbole_name(name, known))}
    lightgcn = {
        name: ours
        for name in names
        if name not in recbole and (ours := recbole_name(name, known, LIGHTGCN_NAMES))
    }
    # a close spelling of these (neg_sampling: sampling) would mislead
    absent = {
        name: note
        for name in names
        if name not in recbole and (note := RECBOLE_ABSENT.get(_setting_name(name)))
    }
    # RecBole spells its datasets ML-100K; difflib, which tells no case, finds nothing or another name
    lower = {
        name: name.lower()
        for name in names
        if name not in recbole and name.lower() != name and name.lower() in known
    }
    # spelt closest without the dashes every flag shares, which made --nosuch look like --epochs
    bare = {spelt.lstrip("-"): spelt for spelt in known}
    close = [
        bare[match]
        for name in names
        if name not in [*recbole, *lightgcn, *absent, *lower]
        for match in difflib.get_close_matches(name.lstrip("-"), bare, n=1)
    ]
    parts = []
    for whose, meant in (("RecBole's", recbole), ("the LightGCN code's", lightgcn)):
        if meant:
            parts.append(f"{whose} {', '.join(_is(name, ours) for name, ours in meant.items())} here")
    parts += [f"RecBole's {name!r} has no setting here: {note}" for name, note in absent.items()]
    if lower:
        parts.append(f"lower case: {', '.join(map(repr, lower.values()))}")
    if close:
        parts.append(f"did you mean {', '.join(map(repr, close))}?")
    return parts


def _is(name: str, ours: str) -> str:
    """``'learning_rate' is 'lr'``, or where the values count otherwise, ``'stopping_step' N is 'patience'
    N + 1``."""
    values = RECBOLE_VALUES.get(_setting_name(name))
    return f"{name!r} {values[0]} is {ours!r} {values[1]}" if values else f"{name!r} is {ours!r}"


def did_you_mean(names: list[str], known: Iterable[str]) -> str:
    """`` (did you mean 'epochs'?)`` for the known names closest to the misspelt ``names`` (`` (RecBole's
    'learning_rate' is 'lr' here)`` for RecBole's names of them, :data:`RECBOLE_NAMES`), or ``""``."""
    parts = meanings(names, known)
    return f" ({'; '.join(parts)})" if parts else ""


def _described(default: Any) -> str:
    """What a model argument of this default takes, as the settings (JSON) spell it: a list for a tuple."""
    if isinstance(default, (tuple, list)):
        return f"a list of {type(default[0]).__name__}" if default else "a list"
    return with_article(type(default).__name__)


def _shown(default: Any) -> str:
    return repr(list(default)) if isinstance(default, tuple) else repr(default)


def _check_data_file(settings: dict[str, Any]) -> None:
    """``data_file`` goes with dataset ``'file'`` and ``data_options`` with ``data_file``, and only there."""
    if (settings["dataset"] == "file") != (settings["data_file"] is not None):
        raise ConfigError(
            "dataset 'file' reads data_file and only it does: give data_file alone (or with dataset 'file'), "
            f"or a named dataset alone; got dataset {settings['dataset']!r}, data_file "
            f"{settings['data_file']!r}"
        )
    if settings["data_options"] and settings["data_file"] is None:
        raise ConfigError(
            f"data_options set how data_file is read, and there is none: {settings['data_options']!r}"
        )
    unknown = sorted(set(settings["data_options"]) - set(READ_OPTIONS))
    if unknown:
        hint = did_you_mean(unknown, READ_OPTIONS)
        raise ConfigError(f"data_options {unknown} unknown{hint}; they are among {list(READ_OPTIONS)}")


def check_settings(values: dict[str, Any], **fields: Field) -> dict[str, Any]:
    """Checks the settings of :data:`FIELDS` (or of ``fields``, which stand in for them) among ``values``,
    one at a time, and returns ``values`` with them as plain values (``np.int64(5)`` as ``5``, ``ks`` as a
    list of ints); others are left alone. What :class:`~dslgraph.train.TrainConfig` built from Python goes
    through."""
    fields = FIELDS | fields
    out = dict(values)
    for name, value in values.items():
        if name in fields and not (value is None and fields[name].optional):
            if name == "ks" and is_sequence(value):
                value = list(value)
            out[name] = _check(name, fields[name], value)
            if name == "ks":
                out[name] = _check_ks(value)
    return out


_DSL_ARGUMENTS = (
    "sparsity", "targets", "update_interval", "schedule", "rho0", "rho_min", "t_end", "growth",
    "optimizer_state", "distribution", "mask_init", "backend", "skip_zero_gradient",
)  # fmt: skip
#: Where, in Python, the settings of ``dslgraph train`` go that :class:`~dslgraph.train.TrainConfig` does not
#: hold: a model's argument passed to it (``TrainConfig(embedding_dim=64)``) is refused naming its place.
SETTING_PLACES: dict[str, str] = {
    **{
        name: f"the model's argument{'' if arg == name else f' {arg!r}'}: "
        f"LightGCN(num_users, num_items, {arg}=...)"
        for name, arg in MODEL_ARGUMENTS.items()
    },
    "options": "the model's keyword arguments: LightGCN(num_users, num_items, **options)",
    "model": "the model itself: LightGCN(num_users, num_items) of dslgraph.nn",
    **dict.fromkeys(("root", "protocol", "val_ratio"), "load_dataset's argument (dslgraph.data)"),
    "dataset": "load_dataset's name (dslgraph.data)",
    "data_file": "load_file's path (dslgraph.data)",
    "data_options": "load_file's keyword arguments (dslgraph.data)",
    "eval_negatives": "load_dataset's protocol_options={'num_negatives': 100}",
    "split_seed": "the seed of load_dataset (or load_file)",
    "device": "Trainer's argument: Trainer(model, data, config, device='cpu')",
    "threads": "torch.set_num_threads(N)",
    **dict.fromkeys(
        _DSL_ARGUMENTS,
        "DynamicSparseLearning's argument: DynamicSparseLearning(model, sparsity, total_steps, ...), "
        "a hook of Trainer",
    ),
    "static_mask": "DynamicSparseLearning with an update_interval past its total_steps",
}

#: Where, in Python, what ``dslgraph train`` takes besides its settings goes: its ``--output`` and the keys of
#: ``data_options`` (RecBole's ``checkpoint_dir`` and ``USER_ID_FIELD`` name them).
OTHER_PLACES: dict[str, str] = {
    "output": "Trainer's argument output_dir: Trainer(model, data, config, output_dir=...)",
    **{
        name: f"load_file's keyword argument: load_file(path, {name}=...) (dslgraph.data)"
        for name in READ_OPTIONS
    },
}


def _places(names: list[str]) -> dict[str, str]:
    """Where each of the settings ``names`` that a dataclass does not hold goes (:data:`SETTING_PLACES`,
    :data:`OTHER_PLACES`), RecBole's or the LightGCN code's names of them too."""
    places = {}
    for name in names:
        # RecBole's names of read options (USER_ID_FIELD) and of --output (checkpoint_dir) too
        meant = (
            recbole_name(name, FIELDS)
            or recbole_name(name, READ_OPTIONS)
            or recbole_name(name, COMMAND_LINE_ONLY)
            or recbole_name(name, FIELDS, LIGHTGCN_NAMES)
            or name
        )
        place = SETTING_PLACES.get(meant) or OTHER_PLACES.get(meant)
        if place:
            renamed = f" {meant!r} here," if meant != name else ""
            places[name] = f"{name!r} is{renamed} {place}"
    return places


def naming_the_field_meant(cls: type) -> type:
    """The dataclass ``cls``, whose constructor refuses an unknown keyword argument naming the field meant
    (:func:`did_you_mean`: RecBole's ``learning_rate`` is ``lr``) where Python's own refusal names none,
    or where the setting goes instead (``embedding_dim``: the model's, :data:`SETTING_PLACES`)."""
    init = cls.__init__
    known = [field.name for field in fields(cls)]

    @functools.wraps(init)  # its signature stays the fields'
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        unknown = [name for name in kwargs if name not in known]
        if unknown:
            places = _places(unknown)
            parts = [*places.values(), *meanings([name for name in unknown if name not in places], known)]
            hint = f" ({'; '.join(parts)})" if parts else ""
            raise TypeError(f"{cls.__name__}() got unexpected keyword argument(s) {unknown}{hint}")
        init(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls


def _check_ks(ks: list) -> list[int]:
    """The cut-offs as plain ints: NumPy's integers (``np.arange(5, 25, 5)``) pass, to go on as ints,
    which JSON (``metrics.json``, a run's settings) writes as numbers; ``np.int64(10)`` as ``"10"`` or
    not at all."""
    if not ks or any(not is_count(k) or k < 1 for k in ks):
        raise ConfigError(f"ks must be a non-empty list of positive integers, got {ks!r}")
    return [int(k) for k in ks]


def _check(name: str, field: Field, value: Any) -> Any:
    """``value`` as the plain value of ``field`` (:func:`_plain`), or a :class:`ConfigError` naming ``name``
    and what the field allows."""
    value = _plain(value, field.kind)
    if not _fits(field, value):
        hint = ""
        if _is_number(value) and field.high == 1 and 1 < value <= 100:  # a percentage (--sparsity 80)
            hint = f" (a fraction: {value / 100:g} for {value:g}%)"
        # RecBole spells its models LightGCN, NeuMF; dslgraph.data its datasets MovieLens100K, LastFM
        elif isinstance(value, str) and _fits(field, value.lower()):
            hint = f" (lower case: {value.lower()!r})"
        elif name == "device" and isinstance(value, str) and _is_other_torch_device(value.lower()):  # mps
            hint = f" ({OTHER_DEVICES})"
        raise ConfigError(f"{name} must be {field.describe()}, got {value!r}{hint}")
    return value


def _fits(field: Field, value: Any) -> bool:
    """Whether the plain ``value`` is of ``field``'s type, matches its pattern or choices and is in its
    range (a finite number)."""
    if not isinstance(value, field.kind) or (field.kind is int and isinstance(value, bool)):
        return False
    if field.pattern is not None:
        if re.fullmatch(field.pattern, value, re.ASCII) is None:
            return False
    elif field.choices is not None and value not in field.choices:
        return False
    if not _is_number(value):
        return True
    if isinstance(value, float) and not math.isfinite(value):
        return False
    too_low = field.low is not None and (value <= field.low if field.low_open else value < field.low)
    too_high = field.high is not None and (value >= field.high if field.high_open else value > field.high)
    return not (too_low or too_high)


def _is_other_torch_device(text: str) -> bool:
    """Whether torch names a device by ``text`` (mps, xpu) that is not the CPU or CUDA (not cpu:0, which
    dslgraph does not spell so, but whose kernels it has)."""
    try:
        return torch.device(text).type not in ("cpu", "cuda")
    except RuntimeError:
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: Any, kind: type) -> Any:
    """``value`` as the Python ``kind`` where it is one by value: an integer (NumPy's too, not a bool) as an
    int, a real number (an integer, NumPy's float32) as a float, NumPy's bool as a bool, NumPy's text as a
    str; anything else as it is, for the caller to refuse. NumPy scalars pass into JSON (``metrics.json``,
    a run's settings) as strings and into checkpoints as objects that ``torch.load(weights_only=True)``
    refuses, so none goes on."""
    if isinstance(value, bool | np.bool_):
        return bool(value) if kind is bool else value
    if kind is int and isinstance(value, numbers.Integral):
        return int(value)
    if kind is float and isinstance(value, numbers.Real):
        return float(value)
    if kind is str and isinstance(value, str):
        return str(value)
    return value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Reads a JSON object of settings (keys as in :data:`FIELDS`, dashes allowed), with the relative paths
    of :data:`PATH_FIELDS` taken from the config file's folder (and ``~`` expanded)."""
    path = Path(path)
    try:
        # utf-8-sig: an editor's byte-order mark (Notepad's) failed as "Unexpected UTF-8 BOM"
        text = path.read_text(encoding="utf-8-sig")
        values = json.loads(text, object_pairs_hook=functools.partial(_unique_keys, path, ""))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:  # a folder, unreadable, not UTF-8 text
        raise ConfigError(f"config file {path} could not be read as JSON text: {exc}") from exc
    except json.JSONDecodeError as exc:
        yaml = path.suffix in (".yaml", ".yml")  # dslgraph depends on no YAML reader
        hint = " (YAML is not read: write the settings as a JSON object)" if yaml else ""
        raise ConfigError(f"config file {path} is not valid JSON{hint}: {exc}") from exc
    except ConfigError:  # a key given twice, named by _unique_keys
        raise
    except (ValueError, RecursionError) as exc:  # a number of over 4300 digits, arrays nested too deep
        raise ConfigError(f"config file {path} could not be read as JSON: {exc}") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a JSON object of settings")
    spelt = " (with a dash and with an underscore)"
    values = _unique_keys(path, spelt, [(key.replace("-", "_"), value) for key, value in values.items()])
    for name in PATH_FIELDS:  # relative to the config file's folder, wherever it is run from
        if isinstance(values.get(name), str):  # ~ as PyG's datasets take it: no shell expands it here
            values[name] = str(path.parent / Path(values[name]).expanduser())
    return values


def _unique_keys(path: Path, how: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The object of the ``pairs`` of config file ``path``, refused where it names a key twice (``how``)
    instead of keeping the last silently as json does."""
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise ConfigError(f"config file {path} names {twice} more than once{how}; give each once")
    return dict(pairs)
