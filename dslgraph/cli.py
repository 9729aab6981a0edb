"""Command line: ``dslgraph train | eval | recommend | datasets`` (also ``python -m dslgraph``)."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import json
import logging
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from dslgraph import __version__
from dslgraph.config import (
    FIELDS,
    MODEL_ARGUMENTS,
    MODEL_DEFAULTS,
    PATH_FIELDS,
    PRESETS,
    ConfigError,
    check_settings,
    did_you_mean,
    load_config_file,
    model_arguments,
    model_parameters,
    unknown_names_hint,
    validate,
)
from dslgraph.data import (
    DATASETS,
    EDGE,
    data_fingerprint,
    dataset_statistics,
    default_root,
    load_dataset,
    load_file,
)
from dslgraph.data.io import is_number
from dslgraph.metrics.cost import cost_report
from dslgraph.nn import MODELS, UltraGCN
from dslgraph.nn.base import table_row_degrees
from dslgraph.sparse import DynamicSparseLearning
from dslgraph.train import (
    CheckpointError,
    TrainConfig,
    Trainer,
    load_checkpoint,
    load_model_state,
    locked_output,
    make_adam,
    resolve_device,
)
from dslgraph.train.checkpoint import check_earlier_run, earlier_run_files
from dslgraph.train.trainer import make_batches, stopped_early

log = logging.getLogger("dslgraph")

#: The settings that are :class:`~dslgraph.train.TrainConfig` fields (:func:`train_config`).
TRAIN_FIELDS = (
    "epochs", "batch_size", "sampling", "lr", "lr_schedule", "lr_min", "reg_weight",
    "eval_every", "eval_batch_size", "monitor", "patience", "seed", "max_seconds",
    "stop_after_epoch", "checkpoint_every", "compile",
)  # fmt: skip

#: The settings that act only under DSL (``sparsity > 0``).
DSL_FIELDS = (
    "targets", "update_interval", "schedule", "rho0", "rho_min", "t_end", "growth", "optimizer_state",
    "distribution", "mask_init", "backend", "skip_zero_gradient", "static_mask",
)  # fmt: skip
#: The DSL settings that act only when the mask changes (not under ``static_mask``).
PRUNE_AND_GROW_FIELDS = (
    "update_interval", "schedule", "rho0", "rho_min", "t_end", "growth", "optimizer_state",
    "skip_zero_gradient",
)  # fmt: skip
#: The settings a resumed run may change: how long, where (compiled or not) and how often it is evaluated
#: and checkpointed, not what it trains.
RESUMABLE = (
    "epochs", "max_seconds", "stop_after_epoch", "device", "threads", "compile", "root", "data_file",
    "eval_every", "eval_batch_size", "checkpoint_every", "patience",
)  # fmt: skip
#: The read options of a data file that leave some of its users and items out.
FILTER_OPTIONS = ("rating_threshold", "min_user_interactions", "min_item_interactions")
#: The settings that are objects (``--option`` / ``--data-option NAME=VALUE``, one flag a name).
DICT_FIELDS = {name for name, field in FIELDS.items() if field.kind is dict}
#: The settings whose default some models (or UltraGCN's presets) replace by their own.
MODEL_SPECIFIC = {name for defaults in (*MODEL_DEFAULTS.values(), *PRESETS.values()) for name in defaults}


def build_parser() -> argparse.ArgumentParser:
    """The ``dslgraph`` parser: its subcommands, and ``train``'s flags, one per setting of :data:`FIELDS`."""
    description = __doc__.replace("``", "")  # the docstring's reST quotes, not for a terminal
    # no abbreviations: a misspelt flag (--epoch) fails instead of silently meaning another (--epochs)
    parser = argparse.ArgumentParser(prog="dslgraph", description=description, allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    levels = ["DEBUG", "INFO", "WARNING", "ERROR"]
    log_help = "how much is logged to stderr (default INFO)"
    parser.add_argument("--log-level", default="INFO", choices=levels, help=log_help)
    # also after the subcommand (an example script's flags all come after its `train`); SUPPRESS
    # keeps the top-level value where the subcommand does not give one
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=levels, help=log_help)
    sub = parser.add_subparsers(dest="command", required=True)
    add_command = functools.partial(sub.add_parser, allow_abbrev=False, parents=[common])
    parser.commands = sub.choices  # each subcommand's parser, for an error that names its flags

    train = add_command("train", help="train a model (dense, or sparse with --sparsity)")
    train.add_argument("--config", type=path, help="JSON file of settings; command-line flags override it")
    train.add_argument("--output", type=path, help="folder for metrics.json and checkpoints")
    train.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pt and its settings")
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an OUTPUT that holds an earlier run's files (removed as the new run writes its "
        "first checkpoint)",
    )
    train.add_argument(
        "--no-progress", action="store_true", help="hide progress bars (shown only when stderr is a terminal)"
    )
    _add_setting_flags(train)

    evaluate = add_command(
        "eval",
        help="evaluate a checkpoint on the test split",
        description='Prints one JSON line to stdout: {"test": {"<metric>@<K>": value, ...}}, the metrics of '
        "the run's protocol.",
    )
    evaluate.add_argument("checkpoint", type=path, help="a best.pt / last.pt written by train")
    _add_restore_flags(evaluate)
    evaluate.add_argument(
        "--ks", type=cut_off, nargs="+", default=None, help="cut-offs K (default: the run's)"
    )
    evaluate.add_argument(
        "--no-progress",
        action="store_true",
        help="hide the progress bar (shown only when stderr is a terminal)",
    )

    recommend = add_command(
        "recommend",
        help="top-k items for users from a checkpoint",
        description='Prints one JSON line to stdout: {"<user id>": [item id, ...], ...}, each user\'s k '
        "items best first, never one of its training items while others are left. Ids are the dataset's "
        "0-based indices, as dslgraph numbers its users and items; for a run on a --data-file, the file's "
        "own ids. A user given twice is listed once.",
    )
    recommend.add_argument("checkpoint", type=path, help="a best.pt / last.pt written by train")
    recommend.add_argument(
        "--users", nargs="+", required=True, help="0-based user ids; for a --data-file run, the file's own"
    )
    recommend.add_argument("-k", type=int, default=10, help="items per user (default 10)")
    _add_restore_flags(recommend)

    datasets = add_command(
        "datasets",
        help="statistics of the datasets (downloads named ones if needed)",
        description="Prints each dataset's users, items, interactions of its train / val / test splits (as "
        "train splits it by default) and density.",
    )
    datasets.add_argument("names", nargs="*", help=f"any of {list(DATASETS)}; default: those on disk")
    datasets.add_argument("--root", type=path, help=FIELDS["root"].help)
    datasets.add_argument(
        "--data-file",
        type=path,
        help="a file of one's own interactions, read and split as train reads it (no dataset names with it)",
    )
    datasets.add_argument(
        "--data-option",
        dest="data_options",
        type=name_value,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="how --data-file is read, as for train (repeatable)",
    )
    return parser


def _add_setting_flags(train: argparse.ArgumentParser) -> None:
    """Adds ``train``'s flag for each setting of :data:`FIELDS` (``--name-with-dashes``), typed as it."""
    for name, field in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        if field.kind is bool:
            # --no-FLAG too: a config file's true is switched off from the command line
            train.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=field.help or None
            )
        elif field.kind is list:
            default = "" if field.default is None else f" (default {' '.join(map(str, field.default))})"
            train.add_argument(
                flag,
                type=cut_off if name == "ks" else str,
                nargs="+",
                default=None,
                help=field.help + default,
            )
        elif field.kind is dict:  # options: --option NAME=VALUE; data_options: --data-option NAME=VALUE
            what = "a model argument " if name == "options" else ""
            train.add_argument(
                flag.removesuffix("s"),
                dest=name,
                type=name_value,
                action="append",
                default=None,
                metavar="NAME=VALUE",
                help=f"{what}NAME=VALUE (VALUE read as JSON when it parses), repeatable"
                + (f": {field.help}" if field.help else ""),
            )
        else:
            default = "" if field.default is None else f" (default {field.default})"
            if default and name in MODEL_SPECIFIC:  # `--model cdae --help` would otherwise show lightgcn's
                default = f" (default {field.default}; --model may set its own: docs/models.md)"
            # a path's or monitor's "a str" says nothing its help does not
            allows = "" if field.kind is str and field.choices is None else field.describe()
            help = ": ".join(part for part in (f"{allows}{default}".strip(), field.help) if part)
            kind = path if name in PATH_FIELDS else field.kind
            train.add_argument(flag, type=kind, default=None, help=help)


def _add_restore_flags(command: argparse.ArgumentParser) -> None:
    """The flags of ``eval`` and ``recommend`` that say where :func:`load_run` finds a run's data and
    which device it goes to."""
    command.add_argument(
        "--root",
        type=path,
        help="the folder holding <dataset>/raw/, where it moved since training (default: the run's)",
    )
    command.add_argument(
        "--data-file",
        type=path,
        help="a --data-file run's file, where it moved since training (default: the run's)",
    )
    device = FIELDS["device"]
    command.add_argument(
        "--device",
        default=device.default,
        type=device_name,
        help=f"{device.describe()} (default {device.default}): {device.help}",
    )


def run_example(defaults: list[str], doc: str | None, argv: list[str] | None = None) -> int:
    """An example script's entry point: ``dslgraph`` with the script's ``defaults``, under the ``--config``
    file and the flags in ``argv`` (default: the command line's) as the library's own defaults are; a
    resumed run takes its checkpoint's settings instead. ``--help`` shows the script's ``doc`` and
    defaults before the flags."""
    read_command_line = argv is None
    argv = sys.argv[1:] if argv is None else argv
    helped = {"-h", "--help"} & set(argv)
    if helped:
        print(f"{(doc or '').strip()}\n\nThis script runs: dslgraph {' '.join(defaults)} [FLAG ...]\n")
    script = build_parser().parse_args(defaults)
    return _main([script.command, *argv], given_settings(script), script.output, program=read_command_line)


def _example_output(
    args: argparse.Namespace, config: dict[str, Any], settings: dict[str, Any] | None = None
) -> str:
    """The output folder of an example script's ``train`` that gives no ``--output``: the script's own
    (``args.script_output``, ``runs/<model>-<dataset>``), named after the model and data that the run's
    ``settings`` train instead where they are not the script's (``lightgcn_lastfm.py --model neumf`` wrote
    to runs/lightgcn-lastfm); a ``--data-file`` run after the file's name without its suffix. A resumed run,
    whose settings its folder holds, gives none: the script's settings under the ``config`` file's and the
    flags' then name it."""
    # the script's model arguments do not decide where the run goes, and they fail for another model
    kept = {name: value for name, value in args.defaults.items() if name not in (*MODEL_ARGUMENTS, "options")}
    try:
        ours, theirs = validate(kept), settings or settings_from_args(args, kept, config)
    except ConfigError:  # unfit for the script's settings, the flags may still fit the resumed run's
        return args.script_output
    data = [
        run["dataset"] if run["data_file"] is None else Path(run["data_file"]).stem for run in (ours, theirs)
    ]
    if (ours["model"], data[0]) == (theirs["model"], data[1]):
        return args.script_output
    return str(Path(args.script_output).with_name(f"{theirs['model']}-{data[1]}"))


def main(
    argv: list[str] | None = None, defaults: dict[str, Any] | None = None, output: str | None = None
) -> int:
    """``dslgraph`` with the arguments ``argv`` (default: the command line's); ``defaults`` are settings that
    a fresh ``train`` takes where its config file and flags give none, and ``output`` the folder of a
    ``train`` that gives no ``--output`` (an example script's: :func:`_example_output` names it)."""
    return _main(argv, defaults, output, program=argv is None)


def _main(argv: list[str] | None, defaults: dict[str, Any] | None, output: str | None, program: bool) -> int:
    """:func:`main`; ``program``: whether the command is the process's own (its command line read), which
    ends with it: only then are Ctrl-C and SIGTERM ignored through the process's exit handlers after a stop
    (:func:`_interrupts_ignored`), not in a process that called :func:`main` and goes on."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    args.defaults, args.script_output, args.program = defaults or {}, output, program
    if unknown:  # argparse's own error would not say which flag was meant
        command = parser.commands[args.command]
        model = _trained_model(args, args.defaults) if args.command == "train" else None
        hint = _unknown_flags_hint(unknown, command, model)
        command.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    # torch's notes on its sparse tensors (beta CSR support, invariant checks off) speak to developers, not to
    # the user of a run; the tests silence the same two (pyproject.toml)
    for note in ("Sparse CSR tensor support is in beta state", "Sparse invariant checks"):
        warnings.filterwarnings("ignore", message=note)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # a warning is said in one line, as the errors are, not beside the line of the script that ran dslgraph
    # (sys.exit(main())); shown as before, so that warnings.catch_warnings and pytest.warns still record it
    formatwarning = warnings.formatwarning
    warnings.formatwarning = functools.partial(_warning_line, args.command)
    try:
        with _terminated_as_interrupted():
            return _run_command(args)
    finally:
        warnings.formatwarning = formatwarning


class Terminated(KeyboardInterrupt):
    """SIGTERM (what batch schedulers and ``kill`` send first), raised as Ctrl-C's interrupt is."""


@contextlib.contextmanager
def _terminated_as_interrupted():
    """SIGTERM raises :class:`Terminated` within: the command then ends as after Ctrl-C, saying how a run
    goes on, where it ended the process without a word. Only in the main thread (the one signals reach), and
    not where SIGTERM is ignored or already handled."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _warning_line(command: str, message, category, filename, lineno, line=None) -> str:
    kind = "" if category is UserWarning else f" ({category.__name__})"
    return f"dslgraph {command}: warning{kind}: {message}\n"


def _run_command(args: argparse.Namespace) -> int:
    """Runs the parsed command; what the user can mend is said in one line with exit status 2."""
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, CheckpointError, ValueError, FloatingPointError) as exc:  # the last: a diverged loss
        print(f"dslgraph {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a missing file, a full disk or a folder not writable while saving: named, and
        # a run stopped by it says where it can go on from, as after Ctrl-C
        resumable = "" if isinstance(exc, FileNotFoundError) else _resumable(args)
        print(f"dslgraph {args.command}: error: {exc}{resumable}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # 128 + the signal's number, as a shell reports it
        first = exc  # a second Ctrl-C while the first unwound the run was raised in its place
        while isinstance(first.__context__, KeyboardInterrupt):
            first = first.__context__
        ended = "terminated" if isinstance(first, Terminated) else "interrupted"
        with _interrupts_ignored(at_exit=args.program):
            print(f"dslgraph {args.command}: {ended}{_resumable(args)}", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(first, Terminated) else signal.SIGINT)


#: The signals that stop a command: Ctrl-C's, and SIGTERM (:class:`Terminated`).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _interrupts_ignored(at_exit: bool):
    """Within, and where ``at_exit`` from the process's exit on, Ctrl-C and SIGTERM are ignored: a command
    they stopped is on its way out, and a second one (Ctrl-C pressed twice) printed a traceback in place of
    how the run goes on, or in torch's exit handlers after it. Its checkpoints are whole either way (written
    then renamed). ``at_exit`` only where the process ends with the command (``dslgraph``, ``python -m
    dslgraph``, an example script): a notebook, a service or a test session that called :func:`main` keeps
    its own signals for its exit handlers, however much later it ends. Only in the main thread (the one
    signals reach)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # one set outside Python (by a program embedding it) cannot be put back: left as it is
    before = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    before = {number: handler for number, handler in before.items() if handler is not None}
    for number in before:
        signal.signal(number, signal.SIG_IGN)
    if at_exit:  # last registered, so run first; once
        atexit.unregister(_ignore_interrupts)
        atexit.register(_ignore_interrupts)
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def _ignore_interrupts() -> None:
    """At the exit of a process with a stopped command: its exit handlers (torch's) run to their end."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)


def _unknown_flags_hint(unknown: list[str], command: argparse.ArgumentParser, model: Any) -> str:
    """What the ``unknown`` arguments of ``command`` may stand for (:func:`unknown_names_hint`), answered for
    the trained ``model`` (:obj:`None` for a command that trains none); ``""`` where none."""
    flags = [flag for action in command._actions for flag in action.option_strings]
    # -lr, -epochs: a flag with one dash too few, answered as the flag it spells (--lr, --epochs)
    spelt = [arg.partition("=")[0] for arg in unknown if arg.startswith("-") and not is_number(arg)]
    given = dict.fromkeys(flag if flag.startswith("--") else "-" + flag for flag in spelt if len(flag) > 2)
    names = {flag: flag[2:].replace("-", "_") for flag in given}
    return unknown_names_hint(names, model, flags, flags=True, data_options="--data-option" in flags)


def _trained_model(
    args: argparse.Namespace, defaults: dict[str, Any], config: dict[str, Any] | None = None
) -> Any:
    """The model a ``train`` command line trains, as far as its flags, its ``config`` file's settings (read
    here where not given), the run it resumes or an example script's ``defaults`` say."""
    if args.model is not None:
        return args.model
    if config is None:  # for the hints of unknown flags, which a config file unread is no reason to drop
        with contextlib.suppress(ConfigError):
            config = load_config_file(args.config) if args.config else {}
    if "model" in (config or {}):
        return config["model"]
    output = args.output or args.script_output
    if not (args.resume and output):
        return defaults.get("model", FIELDS["model"].default)
    with contextlib.suppress(CheckpointError):
        checkpoint = Path(output) / "last.pt"
        return recorded_settings(load_checkpoint(checkpoint), checkpoint)["model"]
    return None  # no run to resume: no model to answer for


def _identity(path: Path) -> tuple[int, int]:
    """Which file ``path`` is: its inode and modification time (a new checkpoint renamed over it differs)."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def _resumable(args: argparse.Namespace) -> str:
    """How an interrupted ``train`` continues: from the last.pt of its last evaluation or ``checkpoint_every``
    checkpoint, if it wrote one; nothing where the output folder cannot be looked into (a name too long: the
    error being reported)."""
    if args.command != "train" or not args.output:
        return ""
    try:
        return _resume_hint(args)
    except OSError:  # raised here, it replaced the error it was called to report, as a traceback
        return ""


def _resume_hint(args: argparse.Namespace) -> str:
    last = Path(args.output) / "last.pt"
    replaced = getattr(args, "replaced_last", None)
    if replaced is not None and last.exists() and _identity(last) == replaced:
        return (
            f"; this run wrote no checkpoint, so there is nothing of it to resume ({args.output} still holds "
            "the earlier run that --overwrite would have replaced)"
        )
    try:
        epoch = load_checkpoint(last)["epoch"]
    except CheckpointError:
        # a run stopped in its first evaluation wrote best.pt and metrics.json, which a new run must overwrite
        afresh = " (start afresh with --overwrite)" if earlier_run_files(Path(args.output)) else ""
        return f"; {last} was not written yet, so there is nothing to resume{afresh}"
    return f"; {last} holds epoch {epoch}: continue with --output {args.output} --resume"


def name_value(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` of ``--option`` and ``--data-option`` (and of the benchmarks' ``--set``): VALUE as
    JSON, or as text where it is no JSON (``mask_init=aligned``)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def path(text: str) -> str:
    """The value of a flag that names a file or folder: not empty, which ``--output "$RUN"`` with ``RUN``
    unset gives, and which would run as if the flag were left out (no config file read, nothing written)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got '' (an empty shell variable?)")
    return text


def cut_off(text: str) -> int:
    """A K of ``--ks``: an integer, several of them given apart (``--ks 10 20``, not RecBole's ``10,20``)."""
    try:
        return int(text)
    except ValueError:
        several = [k.strip() for k in text.strip("[]()").split(",")]
        apart = f" (several go apart: --ks {' '.join(several)})" if "," in text else ""
        raise argparse.ArgumentTypeError(f"expected an integer cut-off K, got {text!r}{apart}") from None


def device_name(text: str) -> str:
    """``--device`` of ``eval`` and ``recommend``, checked as ``train``'s."""
    try:
        return check_settings({"device": text})["device"]
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the flags in ``args`` give, unvalidated."""
    given = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    for name in DICT_FIELDS & set(given):
        given[name] = dict(given[name])
    return given


def settings_from_args(
    args: argparse.Namespace, base: dict[str, Any] | None = None, config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The settings of ``base`` (e.g. those of the run being resumed), overridden by the config file's
    (``config``, where the caller has read it), overridden by the flags given."""
    if config is None:
        config = load_config_file(args.config) if args.config else {}
    values = _other_data_left_out(dict(base or {}), config) | config
    given = given_settings(args)
    values = _other_data_left_out(values, given)
    for name in DICT_FIELDS & set(given):  # a flag adds to the object of the config file or base
        earlier = values.get(name, {})
        if not isinstance(earlier, dict):
            raise ConfigError(f"{name} must be an object of NAME: VALUE, got {earlier!r}")
        given[name] = earlier | given[name]
    values.update(given)
    return validate(values)


def _other_data_left_out(values: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the data that ``over``, the settings overriding them, replace: a data file
    replaces a named dataset (a script's), and a named dataset a data file and its read options (a config
    file's, which no flag could unset)."""
    if "data_file" in over and "dataset" not in over:
        return {name: value for name, value in values.items() if name != "dataset"}
    if over.get("dataset", "file") != "file" and "data_file" not in over:
        return {name: value for name, value in values.items() if name not in ("data_file", "data_options")}
    return values


def build_model(
    settings: dict[str, Any], data: HeteroData, config: TrainConfig
) -> tuple[torch.nn.Module, DynamicSparseLearning | None]:
    """The model of ``settings`` and, when ``sparsity > 0``, its DSL controller (before the optimizer).

    DSL sparsifies ``settings["targets"]``, or the model's own ``dsl_targets`` (the authors' choice).
    """
    torch.manual_seed(settings["seed"])
    num_users, num_items = int(data["user"].num_nodes), int(data["item"].num_nodes)
    cls = MODELS[settings["model"]]
    arguments = model_arguments(settings)
    if cls is UltraGCN and "cache_dir" not in arguments and settings["data_file"] is None:
        root = settings["root"] or default_root()
        arguments["cache_dir"] = os.path.join(root, settings["dataset"], "processed")
    model = cls(num_users, num_items, **arguments)
    if settings["sparsity"] == 0:
        return model, None
    total_steps = config.epochs * len(make_batches(model, data, config))
    # A static mask is DSL whose first update would come after the last iteration.
    interval = total_steps + 1 if settings["static_mask"] else settings["update_interval"]
    with warnings.catch_warnings():
        # the library's word on a ΔT past the run: a static mask asks for no update, and run_training names
        # the flags instead
        warnings.filterwarnings("ignore", message=r"update_interval=\d+ exceeds the")
        dsl = DynamicSparseLearning(
            model,
            settings["sparsity"],
            total_steps,
            targets=settings["targets"],  # None: the model's dsl_targets
            update_interval=interval,
            schedule=settings["schedule"],
            rho0=settings["rho0"],
            rho_min=settings["rho_min"],
            t_end=settings["t_end"],
            growth=settings["growth"],
            optimizer_state=settings["optimizer_state"],
            distribution=settings["distribution"],
            mask_init=settings["mask_init"],
            backend=settings["backend"],
            skip_zero_gradient=settings["skip_zero_gradient"],
            seed=settings["seed"],
            row_degrees=table_row_degrees(model, data) if settings["mask_init"] == "degree" else None,
        )
    return model, dsl


def load_data(settings: dict[str, Any]) -> HeteroData:
    """The dataset (with its validation split and evaluation protocol) that ``settings`` name, or the
    interactions of their ``data_file``."""
    protocol, val_ratio = settings["protocol"], settings["val_ratio"]
    options = {}
    if protocol == "leave-one-out":
        options = {"validation": val_ratio > 0, "num_negatives": settings["eval_negatives"]}
    elif protocol == "held-out-users":
        options = {"num_val_users": val_ratio if val_ratio > 0 else 0}  # a count of 0, or a fraction
    common = {
        "protocol": protocol,
        "protocol_options": options,
        "val_ratio": val_ratio if protocol == "full" else 0.0,
        "seed": settings["seed"] if settings["split_seed"] is None else settings["split_seed"],
    }
    if settings["data_file"] is not None:
        return load_file(settings["data_file"], **common, **settings["data_options"])
    return load_dataset(settings["dataset"], settings["root"], **common)


def train_config(settings: dict[str, Any], progress: bool = True) -> TrainConfig:
    """The :class:`TrainConfig` of validated ``settings``."""
    return TrainConfig(
        **{name: settings[name] for name in TRAIN_FIELDS}, ks=tuple(settings["ks"]), progress=progress
    )


def run_training(
    settings: dict[str, Any],
    output: str | None,
    resume: bool = False,
    progress: bool = True,
    fingerprint: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Trains as ``settings`` say (validated by :func:`dslgraph.config.validate`); returns the summary.
    ``fingerprint`` is the resumed checkpoint's :func:`~dslgraph.data.data_fingerprint`, if it has one;
    ``overwrite`` lets a fresh run replace an earlier one in ``output`` (:class:`Trainer`'s)."""
    if settings["threads"]:
        torch.set_num_threads(settings["threads"])
    device = resolve_device(settings["device"])  # no CUDA fails before the data is downloaded and processed
    data = load_data(settings)
    check_fingerprint(data, fingerprint, Path(output or ".") / "last.pt", settings["data_file"])
    config = train_config(settings, progress)
    model, dsl = build_model(settings, data, config)
    if dsl is not None and not settings["static_mask"] and dsl.update_interval > dsl.horizon:
        # the default ΔT of 3000 outlasts a few epochs of a small file: the run would be a static mask's
        log.warning(
            "update_interval %d exceeds the %d iterations DSL updates within (t_end, else epochs x batches "
            "an epoch): the mask never changes, as under --static-mask; lower --update-interval",
            dsl.update_interval,
            dsl.horizon,
        )
    optimizer = make_adam(model.parameters(), config.lr)
    if dsl is not None:
        dsl.attach(optimizer)
    log.info("%r", model)
    trainer = Trainer(
        model,
        data,
        config,
        output_dir=output,
        device=device,
        hooks=[dsl] if dsl else [],
        optimizer=optimizer,
        metadata={"settings": settings},  # the trainer records the data's fingerprint
        overwrite=overwrite,
    )
    summary = trainer.fit(resume=resume)
    report = cost_report(
        model, trainer.graph, optimizer, config.batch_size, dsl, steps_per_epoch=len(trainer.batches)
    )
    message = "parameters + optimizer state: %.1f MB (%.2fx dense)"
    values = [(report["parameter_bytes"] + report["optimizer_state_bytes"]) / 1e6, report["bytes_ratio"]]
    if report["workspace_bytes"]:  # propagation plans of graph models, row layouts of any sparse tensor
        message += "; index caches of sparse tensors: %.1f MB"
        values.append(report["workspace_bytes"] / 1e6)
    log.info(message, *values)
    report["settings"] = settings
    summary.update(report)
    if output is not None:
        trainer.write_summary(report)
    return summary


def cmd_train(args: argparse.Namespace) -> int:
    if not (args.output or args.script_output):  # a run that writes nothing has nothing to resume or replace
        if args.resume:
            raise ConfigError("--resume needs --output (the folder holding last.pt)")
        if args.overwrite:
            raise ConfigError("--overwrite needs --output (the folder whose earlier run it replaces)")
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in --output and --overwrite starts afresh: give one")
    config = load_config_file(args.config) if args.config else {}  # read once, here
    settings = None  # a resumed run's come from its folder
    if not args.resume:
        defaults = _script_model_left_out(args, args.defaults, config)
        settings = settings_from_args(args, defaults, config)
        _warn_settings_unused(settings, defaults)
        _warn_script_tuned_for_other_data(args, defaults, config, settings)
    if not args.output and args.script_output:
        args.output = _example_output(args, config, settings)
    if not args.output:  # a run stopped short keeps nothing to resume from (--resume needs an output)
        stop = next((name for name in ("max_seconds", "stop_after_epoch") if settings[name]), None)
        if stop:
            log.warning(
                "--%s stops the run with nothing saved to resume from: pass --output to keep a checkpoint",
                stop.replace("_", "-"),
            )
        if settings["checkpoint_every"]:
            log.warning("--checkpoint-every writes no checkpoint without --output: pass --output to keep one")
    with locked_output(args.output) if args.output else contextlib.nullcontext():
        return _train(args, config, settings)


def _warn_settings_unused(settings: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Names the settings a run was given that do not act in it (DSL's in a dense run, prune and grow's
    under a static mask, lr_min without the cosine schedule, sampling for a model trained on batches of
    users, reg_weight for a model whose loss ignores it, init_std under init xavier), other than its model's
    and dataset's presets and an example script's ``defaults`` (which set them for a flag such as
    ``--sparsity`` to use)."""
    unused = {}  # why: the names
    if settings["sparsity"] == 0:
        unused["only act(s) under DSL; without --sparsity the model is dense"] = DSL_FIELDS
    elif settings["static_mask"]:
        unused["only act(s) when DSL changes the mask; --static-mask keeps the initial one"] = (
            PRUNE_AND_GROW_FIELDS
        )
    if settings["lr_schedule"] != "cosine":
        unused["only acts under --lr-schedule cosine"] = ("lr_min",)
    if settings["data_file"] is not None:
        unused["only acts for a named dataset, not a --data-file"] = ("root",)
    model = settings["model"]
    if MODELS[model].batch_kind == "users":
        unused[f"only acts on models trained on (user, item) pairs, not {model}"] = ("sampling",)
    if not MODELS[model].uses_reg_weight:
        gamma = " (its L2 weight: --option gamma=VALUE)" if "gamma" in model_parameters(model) else ""
        unused[f"only acts on models whose loss has a term it weighs, not {model}{gamma}"] = ("reg_weight",)
    if settings["init"] == "xavier":
        unused["only acts under --init normal (Xavier's init has no std)"] = ("init_std",)
    checked = {name for names in unused.values() for name in names}
    given = {name: value for name, value in defaults.items() if name in checked}
    preset = validate({name: settings[name] for name in ("model", "dataset", "data_file")} | given)
    for why, names in unused.items():
        names = [name for name in names if settings[name] != preset[name]]
        if names:
            log.warning("%s %s", ", ".join(names), why)


def _warn_script_tuned_for_other_data(
    args: argparse.Namespace, defaults: dict[str, Any], config: dict[str, Any], settings: dict[str, Any]
) -> None:
    """Names an example script's ``defaults`` that still act in a run on another named dataset than the
    script's (``ultragcn_gowalla.py --dataset yelp2018`` trained with Gowalla's batch, lr and gamma without a
    word, where ``dslgraph train --model ultragcn --dataset yelp2018`` takes yelp2018's official preset).
    Flags override a script's settings one by one, as its docstring says, so the run keeps them, named; a
    ``--data-file`` has no settings tuned for it, and takes the script's as they are."""
    ours = defaults.get("dataset", FIELDS["dataset"].default)
    data = settings["dataset"]
    if not defaults or settings["data_file"] is not None or data == ours:
        return
    given = config | given_settings(args)
    kept = []
    for name, value in defaults.items():
        if name in DICT_FIELDS:
            kept += [f"{key}={entry}" for key, entry in value.items() if key not in given.get(name, {})]
        elif name not in ("model", "dataset", *given):
            kept.append(f"{name}={value}")
    if kept:
        log.warning(
            "this example's settings were tuned for %s, not %s: %s still act (flags override them); for "
            "%s's, run its example script where there is one, or dslgraph train --model %s --dataset %s "
            "(the model's defaults and the dataset's preset)",
            ours, data, ", ".join(kept), data, settings["model"], data,
        )  # fmt: skip


def _script_model_left_out(
    args: argparse.Namespace, defaults: dict[str, Any], config: dict[str, Any]
) -> dict[str, Any]:
    """An example script's ``defaults``, less the arguments of its model where the flags or the ``config``
    file's settings train another one (``lightgcn_lastfm.py --model neumf`` failed on an ``init`` the user
    never gave)."""
    if not defaults:  # no script: nothing to leave out
        return defaults
    script_model = defaults.get("model", FIELDS["model"].default)
    model = _trained_model(args, defaults, config)
    if model == script_model:
        return defaults
    left_out = [name for name in (*MODEL_ARGUMENTS, "options") if name in defaults]
    if left_out:
        log.info("%s: the script's arguments of %s left out (%s)", model, script_model, ", ".join(left_out))
    return {name: value for name, value in defaults.items() if name not in left_out}


def _train(args: argparse.Namespace, config: dict[str, Any], settings: dict[str, Any] | None) -> int:
    """Trains, in the locked output folder: a fresh run on its ``settings``, or the run ``--resume``
    continues on its own under the ``config`` file's settings and the flags."""
    if args.resume:
        settings, fingerprint = _resumed_settings(args, config)
    else:
        fingerprint = None
        if args.output:  # before the data loads; the trainer replaces the files as it first writes
            earlier = check_earlier_run(args.output, args.overwrite, "--resume", "--overwrite")
            # the earlier run's last.pt, which an interrupt before this run's first checkpoint leaves
            last = Path(args.output) / "last.pt"
            args.replaced_last = _identity(last) if "last.pt" in earlier else None
    for name in PATH_FIELDS:  # the checkpoint records them: eval and recommend may run elsewhere
        if settings[name] is not None:  # ~ too, which the shell leaves in --root=~/data
            settings[name] = os.path.abspath(os.path.expanduser(settings[name]))
    # a bar redrawn with carriage returns is noise in a log file: bars only on a terminal
    progress = not args.no_progress and sys.stderr.isatty()
    threads = torch.get_num_threads()
    try:
        summary = run_training(settings, args.output, args.resume, progress, fingerprint, args.overwrite)
    finally:  # a process that called main() (a notebook) went on with the run's --threads
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    print(
        json.dumps(
            {"test": summary["test"], "epochs": summary["epochs"], "train_seconds": summary["train_seconds"]}
        )
    )
    return 0


def _resumed_settings(args: argparse.Namespace, config: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The settings of the run in ``args.output`` that ``--resume`` continues, with the ``config`` file's
    settings and the flags given (which may change only the RESUMABLE ones), and the data fingerprint its
    checkpoint recorded, if any."""
    checkpoint = Path(args.output) / "last.pt"
    try:
        state = load_checkpoint(checkpoint)
    except CheckpointError as exc:
        if not checkpoint.is_file():
            raise
        # a damaged last.pt was named with no way on (a fresh run into the folder says --resume)
        best = checkpoint.with_name("best.pt")
        back = f", or copy {best} over it to resume from the best epoch" if best.is_file() else ""
        raise CheckpointError(f"{exc}; start afresh with --overwrite instead of --resume{back}") from exc
    previous = recorded_settings(state, checkpoint, root=args.root)
    try:
        settings = settings_from_args(args, previous, config)
    except ConfigError:  # a changed model or protocol fails with the settings it leaves unfit: name it
        raw = config | given_settings(args)
        options = raw.get("options") if isinstance(raw.get("options"), dict) else {}
        # a model argument that is also a setting (embedding_dim) may come as --option too
        changed = {k: v for k, v in options.items() if k in FIELDS}
        changed |= {k: v for k, v in raw.items() if k not in DICT_FIELDS}
        # a bad value ("lr": "x") is named as a fresh run names it, not as a change
        _refuse_changed_settings(checkpoint, previous, {k: v for k, v in changed.items() if _valid(k, v)})
        raise
    # a change that is refused anyway comes first: "nothing to resume" (with its advice to pass a larger
    # --epochs) hid it until the user tried again
    _refuse_changed_settings(checkpoint, previous, settings)
    if settings["static_mask"] and settings["sparsity"] > 0 and settings["epochs"] != previous["epochs"]:
        raise ConfigError(
            f"cannot resume from {checkpoint} with other epochs ({previous['epochs']}, now "
            f"{settings['epochs']}): a static mask's run is laid out as DSL whose first update comes "
            "after its last iteration"
        )
    finished = state["epoch"] >= settings["epochs"]
    # under the same patience, the trainer trains an early-stopped run no further
    stopped = stopped_early(state.get("bad_evals", 0), settings["patience"])
    halted = 0 < settings["stop_after_epoch"] <= state["epoch"]  # nor one at its stop_after_epoch
    if (finished or stopped or halted) and not (
        state["epoch"] <= settings["epochs"] and _summary_missing(args.output)
    ):  # resuming would rewrite metrics.json without training
        static = settings["static_mask"] and settings["sparsity"] > 0  # which trains its own epochs only
        more = (
            "a --static-mask run takes no other --epochs" if static else "pass a larger --epochs to train on"
        )
        if finished:
            why = f"it has trained {state['epoch']} of {settings['epochs']} epochs ({more})"
        elif stopped:
            why = (
                f"it stopped early at epoch {state['epoch']}, after {state['bad_evals']} evaluations "
                "without gain (pass a larger --patience, or --patience 0, to train on)"
            )
        else:
            stop, epochs = settings["stop_after_epoch"], settings["epochs"]
            # a --stop-after-epoch given now may lie before the epoch the run stopped at
            where = (
                f"to its stop_after_epoch {stop}"
                if stop == state["epoch"]
                else f"past stop_after_epoch {stop}"
            )
            why = (
                f"it has trained {state['epoch']} epochs, {where} (pass a later --stop-after-epoch, or "
                f"--stop-after-epoch 0 to train to epoch {epochs})"
            )
        raise ConfigError(f"nothing to resume in {checkpoint}: {why}")
    return settings, recorded_fingerprint(state)


def _valid(name: str, value: Any) -> bool:
    """Whether ``value`` is one the setting ``name`` takes, on its own."""
    try:
        check_settings({name: value})
    except ConfigError:
        return False
    return True


def _refuse_changed_settings(checkpoint: Path, previous: dict[str, Any], settings: dict[str, Any]) -> None:
    """Fails where ``settings`` (all, or some) change one of the resumed run's ``previous`` settings beyond
    RESUMABLE; a model argument left to the model (:obj:`None`) and given as its default is no change."""
    model = settings.get("model", previous["model"])
    defaults = model_parameters(model) if model == previous["model"] else {}
    previous, settings = _with_model_defaults(previous, defaults), _with_model_defaults(settings, defaults)
    changed = [
        name
        for name in FIELDS
        if name in settings and name not in RESUMABLE and settings[name] != previous[name]
    ]
    if changed:
        name, was, now = changed[0], previous[changed[0]], settings[changed[0]]
        if name == "options":  # the argument that changed, not every default beside it
            argument = next(k for k in {**was, **now} if was.get(k) != now.get(k))
            name, was, now = f"options.{argument}", was.get(argument), now.get(argument)
        raise ConfigError(
            f"cannot resume from {checkpoint}: {name} was {was!r}, now {now!r} "
            f"(a resumed run may change only {', '.join(RESUMABLE)})"
        )


def _with_model_defaults(settings: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``settings`` (all, or some) with the model arguments they leave to the model (a top-level one that
    is :obj:`None`, one absent from ``options``) as its ``defaults`` give them."""
    out = dict(settings)
    for name, argument in MODEL_ARGUMENTS.items():
        if name in out and out[name] is None and argument in defaults:
            out[name] = defaults[argument]
    if isinstance(out.get("options"), dict):
        tops = set(MODEL_ARGUMENTS.values())
        # as the settings hold them: a tuple default (mlp_layers) as a list
        given = {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items() if k not in tops}
        out["options"] = given | out["options"]
    return out


def _summary_missing(output: str) -> bool:
    """Whether a finished run in ``output`` was stopped before writing its final ``metrics.json`` (the one
    with the cost report): resuming it then only writes that."""
    path = Path(output) / "metrics.json"
    try:
        missing = "parameter_bytes" not in json.loads(path.read_text())
    except (OSError, ValueError):
        missing = True
    if missing:
        log.info("%s lacks the finished run's cost report: writing it", path)
    return missing


def recorded_settings(
    state: dict[str, Any], checkpoint: str | os.PathLike, **overrides: str | None
) -> dict[str, Any]:
    """The settings the CLI stored in the checkpoint ``state`` read from ``checkpoint``, validated (with
    the ``overrides`` that are not :obj:`None`, e.g. ``root``, in place of the recorded ones)."""
    metadata = state.get("metadata")
    settings = metadata.get("settings") if isinstance(metadata, dict) else None
    if not isinstance(settings, dict):
        raise CheckpointError(
            f"checkpoint {checkpoint} does not record its settings; it was not written by the CLI"
        )
    if overrides.get("data_file") is not None and settings.get("data_file") is None:
        raise CheckpointError(
            f"checkpoint {checkpoint} was trained on dataset {settings.get('dataset')!r}, not on a data "
            "file: --data-file (dslgraph.load_run's data_file) does not apply (--root, load_run's root, "
            "names where that dataset is)"
        )
    if overrides.get("root") is not None and settings.get("data_file") is not None:
        raise CheckpointError(
            f"checkpoint {checkpoint} was trained on data file {settings['data_file']}, not on a named "
            "dataset: --root (dslgraph.load_run's root) does not apply (--data-file, load_run's data_file, "
            "names where that file is)"
        )
    try:
        return validate(settings | {name: value for name, value in overrides.items() if value is not None})
    except ConfigError as exc:
        raise CheckpointError(
            f"checkpoint {checkpoint} records settings this version of dslgraph does not take: {exc}"
        ) from exc


def recorded_fingerprint(state: dict[str, Any]) -> str | None:
    """The data fingerprint a checkpoint of ``dslgraph train`` recorded: the trainer's, else (checkpoints of
    versions whose trainer recorded none) the CLI's copy in its metadata, else none."""
    return state.get("data_fingerprint") or state["metadata"].get("data_fingerprint")


def check_fingerprint(
    data: HeteroData, fingerprint: str | None, checkpoint: str | os.PathLike, data_file: str | None = None
) -> None:
    """Fails where ``data`` (read from ``data_file``, where given) is not the data of the checkpoint that
    recorded ``fingerprint`` (checkpoints older than fingerprints record none, and pass)."""
    if fingerprint is not None and fingerprint != data_fingerprint(data):
        flag, source = (
            ("--root", "the dataset") if data_file is None else ("--data-file", f"data file {data_file}")
        )
        argument = flag.removeprefix("--").replace("-", "_")
        raise CheckpointError(
            f"checkpoint {checkpoint} was trained on other interactions than {source} now holds (users, "
            f"items or a split's interactions changed since, or {flag} names another copy); pass {flag} "
            f"(dslgraph.load_run's {argument}) with the data it was trained on"
        )


class LoadedRun(NamedTuple):
    """A trained run, as :func:`load_run` rebuilds it: a named tuple, so that
    ``model, data, graph, settings, epoch = dslgraph.load_run(path)`` unpacks it too.

    Attributes:
        model (torch.nn.Module): The trained model, in eval mode, on the device asked for.
        data (torch_geometric.data.HeteroData): The interactions it was trained and evaluated on.
        graph: The model's graph input (``model.input_graph(data)``), on the same device.
        settings (dict): The run's validated settings, as its checkpoint records them.
        epoch (int): The epochs the checkpoint had trained (``best.pt``: the best one's).
    """

    model: torch.nn.Module
    data: HeteroData
    graph: Any
    settings: dict[str, Any]
    epoch: int

    def __repr__(self) -> str:
        # the tuple's own repr printed the whole data, graph and settings; one made by hand may lack some
        settings = self.settings if isinstance(self.settings, dict) else {}
        data_file = settings.get("data_file")
        data = f"dataset={settings.get('dataset')!r}" if data_file is None else f"data_file={data_file!r}"
        sparse = ""
        if settings.get("sparsity"):
            sparse = f", sparsity={settings['sparsity']}, backend={settings.get('backend')!r}"
        parameter = next(self.model.parameters(), None)
        device = "" if parameter is None else f", device='{parameter.device}'"
        epochs = settings.get("epochs", "?")
        model = type(self.model).__name__
        return f"LoadedRun(model={model}, {data}, epoch={self.epoch}/{epochs}{sparse}{device})"


def load_run(
    checkpoint: str | os.PathLike,
    root: str | os.PathLike | None = None,
    device: str = "cpu",
    data_file: str | os.PathLike | None = None,
) -> LoadedRun:
    """Rebuilds the model, data and graph input of a checkpoint that ``dslgraph train`` wrote (``best.pt`` or
    ``last.pt``), as ``dslgraph eval`` and ``recommend`` do: to score or recommend from Python. Data that
    changed since training is refused (the checkpoint's fingerprint).

    Args:
        checkpoint (str): The ``best.pt`` or ``last.pt`` of a run's ``--output`` folder.
        root (str, optional): The datasets' folder, where it moved (default: the one the run recorded).
        device (str, optional): ``"cpu"``, ``"cuda"`` or ``"auto"`` (the GPU where there is one), where the
            model and graph go. (default: :obj:`"cpu"`)
        data_file (str, optional): A ``--data-file`` run's file, where it moved (default: the one recorded).

    Returns:
        A :class:`LoadedRun`: ``.model`` (in eval mode), ``.data`` (the run's ``HeteroData``), ``.graph``
        (the model's graph input, ``model.input_graph(data)``), ``.settings`` (the run's settings) and
        ``.epoch`` (the epochs the checkpoint had trained).
    """
    checkpoint = os.fspath(checkpoint)
    root = None if root is None else os.fspath(root)
    data_file = None if data_file is None else os.fspath(data_file)
    state = load_checkpoint(checkpoint)
    settings = recorded_settings(state, checkpoint, root=root, data_file=data_file)
    device = resolve_device(device)
    data = load_data(settings)
    check_fingerprint(data, recorded_fingerprint(state), checkpoint, settings["data_file"])
    model, _ = build_model(settings, data, train_config(settings))
    load_model_state(model, state, checkpoint)
    graph = model.input_graph(data).to(device)
    return LoadedRun(model.to(device).eval(), data, graph, settings, state["epoch"])


def cmd_eval(args: argparse.Namespace) -> int:
    model, data, graph, settings, _ = load_run(args.checkpoint, args.root, args.device, args.data_file)
    # monitor=None: the protocol's default at the first of ks (config.default_monitor), which evaluating
    # does not read; the recorded monitor's K may be none of the --ks given
    config = TrainConfig(
        epochs=1,
        ks=tuple(args.ks or settings["ks"]),
        eval_batch_size=settings["eval_batch_size"],
        progress=not args.no_progress and sys.stderr.isatty(),  # a bar over the users, as train's
    )
    trainer = Trainer(model, data, config, device=args.device, graph=graph)
    print(json.dumps({"test": trainer.evaluate("test")}))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    model, data, graph, settings, _ = load_run(args.checkpoint, args.root, args.device, args.data_file)
    raw_user_ids, raw_item_ids = data["user"].get("raw_ids"), data["item"].get("raw_ids")
    # a user of the file may be one that these left out
    filters = [name for name in FILTER_OPTIONS if settings["data_options"].get(name) is not None]
    users = user_indices(args.users, model.num_users, raw_user_ids, filters)
    if not 1 <= args.k <= model.num_items:
        raise ValueError(f"-k must be in [1, {model.num_items}], got {args.k}")
    # the output holds one entry a user, keyed by its id as the data spells it ("3" for 03): a user given
    # again (a list of users with repeats, from a log) is listed once, where it came first
    _, first, counts = np.unique(users, return_index=True, return_counts=True)
    order = first.argsort()  # the order given
    first, counts = first[order], counts[order]
    ids = [str(user) for user in (users if raw_user_ids is None else raw_user_ids[users]).tolist()]
    if (counts > 1).any():
        repeated = [ids[i] for i in first[counts > 1]]
        more = f" ({len(repeated)} in all)" if len(repeated) > 10 else ""
        log.warning("user(s) %s%s given more than once: listed once", ", ".join(repeated[:10]), more)
    users, ids = torch.from_numpy(users[first]), [ids[i] for i in first]
    trained = set(data[EDGE].edge_index[0].unique().tolist())
    untrained = [given for given, user in zip(ids, users.tolist()) if user not in trained]
    if untrained:  # their scores come from initial weights (LightGCN), or what all users share (CDAE)
        log.warning(
            "user(s) %s have no training interactions: their recommendations are not personal",
            ", ".join(untrained),
        )
    seen = torch.bincount(data[EDGE].edge_index[0], minlength=model.num_users)[users]
    padded = [given for given, count in zip(ids, seen.tolist()) if model.num_items - count < args.k]
    if padded:  # recommend() fills their lists with their best-scored training items
        log.warning(
            "user(s) %s have fewer than -k %d items they did not train on: their lists end with training "
            "items",
            ", ".join(padded),
            args.k,
        )
    # users and exclusions go where recommend() needs them (the exclusions' rows are made on the CPU); as
    # many users scored at once as the run's evaluation scored
    top = model.recommend(graph, users, args.k, data[EDGE].edge_index, settings["eval_batch_size"]).cpu()
    items = top.tolist() if raw_item_ids is None else raw_item_ids[top.numpy()].tolist()
    print(json.dumps(dict(zip(ids, items))))
    return 0


def user_indices(
    given: list[str], num_users: int, raw_ids: np.ndarray | None = None, filters: list[str] | None = None
) -> np.ndarray:
    """The indices of the users ``given`` on the command line: 0-based indices, or where the data keeps
    its file's own ids (``raw_ids``, :func:`~dslgraph.data.load_file`), those ids; an unknown one is said
    to be absent from the file, or left out by the read options ``filters`` where the run had some."""
    if raw_ids is None:
        try:
            users = np.array([int(user) for user in given])
        except ValueError:
            raise ValueError(f"--users must be integer ids in [0, {num_users}), got {given}") from None
        if users.min() < 0 or users.max() >= num_users:
            raise ValueError(f"--users must be ids in [0, {num_users}), got {given}")
        return users
    query = pd.Series(given)
    if pd.api.types.is_numeric_dtype(raw_ids):  # the file's ids were numbers: 7 is "7" on the command line
        query = pd.to_numeric(query, errors="coerce")
    users = pd.Index(raw_ids).get_indexer(query)
    if (users < 0).any():
        unknown = [user for user, index in zip(given, users) if index < 0]
        dropped = f", or its {' and '.join(filters)} left them out" if filters else ""
        raise ValueError(
            f"--users {unknown} are not user ids of the data file (its own ids, as in the file){dropped}"
        )
    return users


def cmd_datasets(args: argparse.Namespace) -> int:
    if args.data_file is not None or args.data_options:
        if args.names:
            raise ConfigError(f"--data-file is listed alone; leave out the dataset names {args.names}")
        if args.root is not None:  # as eval and recommend refuse it for a data file's run
            raise ConfigError("--root names where named datasets are and does not apply to --data-file")
        settings = validate({"data_file": args.data_file, "data_options": dict(args.data_options)})
        rows = [(os.path.basename(args.data_file), load_data(settings))]  # split as train splits it
        return _print_statistics(rows, f"(file: {os.path.abspath(args.data_file)})")
    root = args.root or default_root()
    if args.root is not None and not args.names:  # listing a mistyped root copied LastFM into a new folder
        if not Path(root).is_dir():
            raise ConfigError(f"--root {root} is no folder: name the folder that holds <dataset>/raw/")
        if (Path(root) / "raw").is_dir():
            raise ConfigError(
                f"--root {root} holds raw/ itself: name the folder above it, which holds <dataset>/raw/"
            )
    names = list(dict.fromkeys(args.names)) or [  # a name given twice, listed once
        name for name in DATASETS if name == "lastfm" or (Path(root) / name / "raw").is_dir()
    ]
    unknown = [name for name in names if name not in DATASETS]
    if unknown:
        raise ValueError(
            f"unknown dataset(s) {unknown}{did_you_mean(unknown, DATASETS)}; known: {list(DATASETS)}"
        )
    # split as train splits it by default (its seed): the same split, and the same processed files
    datasets = [(name, load_data(validate({"dataset": name, "root": str(root)}))) for name in names]
    return _print_statistics(datasets, f"(root: {os.path.abspath(root)})")


def _print_statistics(datasets: list[tuple[str, HeteroData]], footer: str) -> int:
    """Prints a table of :func:`~dslgraph.data.dataset_statistics` of each (name, data), then ``footer``."""
    header = ("dataset", "users", "items", "train", "val", "test", "density")
    rows = [header]
    for name, data in datasets:
        stats = dataset_statistics(data)
        rows.append((name, *(f"{stats[k]:.5f}" if k == "density" else str(stats[k]) for k in header[1:])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
    print(footer)
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "recommend": cmd_recommend, "datasets": cmd_datasets}


if __name__ == "__main__":  # `python -m dslgraph.cli` (as `python -m dslgraph`) ran nothing and exited 0
    sys.exit(main())
