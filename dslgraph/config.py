"""Validation of user-written settings (CLI flags and JSON config files), in one place.

:func:`validate` takes a flat mapping of field names to values, checks each against the table
:data:`FIELDS` and returns plain, typed values; a bad value fails here, naming the field and the
allowed range, before any data is loaded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dslgraph.data.datasets import DATASETS
from dslgraph.data.sampling import SAMPLING_MODES
from dslgraph.sparse.dsl import BACKENDS, DISTRIBUTIONS, GROWTH, OPTIMIZER_STATE
from dslgraph.sparse.schedules import SCHEDULES
from dslgraph.sparse.table import INITS

MODELS = ("lightgcn",)


@dataclass(frozen=True)
class Field:
    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False

    def describe(self) -> str:
        if self.choices is not None:
            return f"one of {list(self.choices)}"
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        article = "an" if self.kind is int else "a"
        return f"{article} {self.kind.__name__} in {left}{low}, {high}{right}"


FIELDS: dict[str, Field] = {
    "dataset": Field(str, "lastfm", choices=tuple(DATASETS)),
    "root": Field(str, None, optional=True),
    "model": Field(str, "lightgcn", choices=MODELS),
    "embedding_dim": Field(int, 64, low=1),
    "num_layers": Field(int, 3, low=0, high=10),
    "init": Field(str, "normal", choices=INITS),
    "init_std": Field(float, 0.1, low=0, low_open=True),
    "epochs": Field(int, 1000, low=1),
    "batch_size": Field(int, 2048, low=1),
    "sampling": Field(str, "edge", choices=SAMPLING_MODES),
    "lr": Field(float, 1e-3, low=0, low_open=True),
    "lr_schedule": Field(str, "none", choices=("none", "cosine")),
    "lr_min": Field(float, 1e-4, low=0),
    "reg_weight": Field(float, 1e-4, low=0),
    "eval_every": Field(int, 10, low=1),
    "eval_batch_size": Field(int, 2048, low=1),
    "ks": Field(list, [20]),
    "monitor": Field(str, "recall@20"),
    "patience": Field(int, 0, low=0),
    "val_ratio": Field(float, 0.0, low=0, high=1, high_open=True),
    "seed": Field(int, 2020, low=0),
    "device": Field(str, "auto", choices=("auto", "cpu", "cuda")),
    "max_seconds": Field(float, 0.0, low=0),
    "threads": Field(int, 0, low=0),
    # Dynamic Sparse Learning
    "sparsity": Field(float, 0.0, low=0, high=1, high_open=True),
    "update_interval": Field(int, 3000, low=1),
    "schedule": Field(str, "cosine", choices=SCHEDULES),
    "rho0": Field(float, 0.5, low=0, high=1),
    "rho_min": Field(float, 0.005, low=0, high=1),
    "t_end": Field(int, None, low=1, optional=True),
    "growth": Field(str, "gradient", choices=GROWTH),
    "optimizer_state": Field(str, "reset", choices=OPTIMIZER_STATE),
    "distribution": Field(str, "uniform", choices=DISTRIBUTIONS),
    "backend": Field(str, "sparse", choices=BACKENDS),
    "static_mask": Field(bool, False),
}


class ConfigError(ValueError):
    """A setting has a wrong name, type or value."""


def validate(values: dict[str, Any]) -> dict[str, Any]:
    """Returns every field of :data:`FIELDS`, defaults filled in, after checking ``values``."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown}; known settings are {sorted(FIELDS)}")
    out = {}
    for name, field in FIELDS.items():
        value = values.get(name, field.default)
        out[name] = None if value is None and field.optional else _check(name, field, value)
    if out["rho_min"] > out["rho0"]:
        raise ConfigError(f"rho_min ({out['rho_min']}) must not exceed rho0 ({out['rho0']})")
    if any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in out["ks"]):
        raise ConfigError(f"ks must be a list of positive integers, got {out['ks']!r}")
    metric, _, k = out["monitor"].partition("@")
    if metric not in ("recall", "ndcg", "precision", "hr") or not k.isdigit() or int(k) not in out["ks"]:
        raise ConfigError(
            f"monitor must be '<recall|ndcg|precision|hr>@K' with K in ks={out['ks']}, got {out['monitor']!r}"
        )
    return out


def _check(name: str, field: Field, value: Any) -> Any:
    if field.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, field.kind) or (field.kind is int and isinstance(value, bool)):
        raise ConfigError(f"{name} must be {field.describe()}, got {value!r}")
    if field.choices is not None and value not in field.choices:
        raise ConfigError(f"{name} must be {field.describe()}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name} must be {field.describe()}, got {value!r}")
        too_low = field.low is not None and (value <= field.low if field.low_open else value < field.low)
        too_high = field.high is not None and (value >= field.high if field.high_open else value > field.high)
        if too_low or too_high:
            raise ConfigError(f"{name} must be {field.describe()}, got {value!r}")
    return value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Reads a JSON object of settings (keys as in :data:`FIELDS`, dashes allowed)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a JSON object of settings")
    return {key.replace("-", "_"): value for key, value in values.items()}
