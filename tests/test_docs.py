"""The documentation against the repository: every path and test it names exists, and every command line it
gives uses flags (and, where written out in full, values) that its command takes."""

import argparse
import ast
import csv
import difflib
import functools
import importlib
import importlib.util
import inspect
import json
import pkgutil
import re
import shlex
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import dslgraph
from dslgraph.cli import build_parser, earlier_run_files, main, settings_from_args

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_FOLDERS = ("examples", "benchmarks")

# A path inside the repository: a top-level folder of it, then anything a file or folder name holds, brace
# alternatives ({a,b}) and placeholders (<model>, *) included; never the tail of another path
# (../shared/datasets).
PATH = re.compile(
    r"(?<![\w/.~<$-])((?:docs|benchmarks|examples|tests|dslgraph|datasets)/[\w./{},*<>-]*[\w*}>])(?:::\s*(\w+))?"
)
# a test named without its file: `test_` and a sentence (not a setting such as `test_ratio`)
TEST_NAME = re.compile(r"`(test_[a-z0-9]+(?:_[a-z0-9]+){2,})`")
# ... of owner/repo: a path in another repository (UltraGCN's published logs)
OTHER_REPOSITORY = re.compile(r"`?\s+of\s+[\w-]+/[\w-]+")
OUTPUT_FLAGS = ("--output", "--out")
COMMAND = re.compile(r"(?:dslgraph|python (?:benchmarks|examples)/\w+\.py)\s.*")
# a word standing for a value in a command (S, N, ROOT, <the same command>, ...), not a value itself
PLACEHOLDER = re.compile(r"\.\.\.|…|[<>$|\[\]]|^[A-Z]+(?:\.\w+)?$")


def documents() -> list[tuple[str, str]]:
    """(name, text) of the README, docs/*.md, the CHANGELOG and the docstrings of the scripts."""
    texts = [
        ("README.md", (ROOT / "README.md").read_text(encoding="utf-8")),
        ("CHANGELOG.md", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")),
    ]
    texts += [(f"docs/{p.name}", p.read_text(encoding="utf-8")) for p in sorted((ROOT / "docs").glob("*.md"))]
    for folder in SCRIPT_FOLDERS:
        for path in sorted((ROOT / folder).glob("*.py")):
            texts.append(
                (
                    f"{folder}/{path.name}",
                    ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "",
                )
            )
    return texts


def expand_braces(path: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", path)
    if match is None:
        return [path]
    return [
        expanded
        for choice in match.group(1).split(",")
        for expanded in expand_braces(path[: match.start()] + choice + path[match.end() :])
    ]


@functools.cache
def _wheel_folders() -> dict[str, Path]:
    """The folders a wheel lays out elsewhere than the repository (pyproject's package-dir), by wheel path."""
    # read without tomllib, which Python 3.10 lacks
    (line,) = re.findall(
        r"^package-dir = \{.*\}$", (ROOT / "pyproject.toml").read_text(encoding="utf-8"), flags=re.M
    )
    pairs = re.findall(r'"([\w.]+)" = "([\w./-]+)"', line)
    return {package.replace(".", "/"): ROOT / folder for package, folder in pairs}


def resolves(path: str) -> bool:
    """``path`` names a file or folder of the repository; a placeholder (``<model>``, ``*``, a lone
    capital letter or ``NAME``: the ``S`` of ``sS-dt50``) stands for a part of a name and must match one,
    and an output prefix (``--out .../cost``) names the files it begins (``cost.md``)."""
    path = path.rstrip("/")
    wheel = _wheel_folders()
    if path in wheel:
        return wheel[path].is_dir()
    if (ROOT / path).exists() or list((ROOT / path).parent.glob(f"{glob_escape((ROOT / path).name)}.*")):
        return True
    pattern = re.sub(r"<[^<>]*>|\bNAME\b|(?<![A-Z])[A-Z](?![A-Za-z])", "*", path)
    if (pattern == path and "*" not in path) or not re.sub(r"[*./-]", "", pattern):
        return False
    return any(ROOT.glob(pattern)) or any(ROOT.glob(pattern + ".*"))


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def named_paths(name: str, text: str) -> list[tuple[str, str | None]]:
    """The repository paths (and ``::test`` ids) ``text`` names; a script's usage lines may name the outputs
    it would write, which need not exist."""
    found = []
    for match in PATH.finditer(text):
        if OTHER_REPOSITORY.match(text, match.end()):
            continue
        before = text[max(0, match.start() - 12) : match.start()].split()
        if name.startswith(SCRIPT_FOLDERS) and before and before[-1] in OUTPUT_FLAGS:
            continue
        found += [(path, match.group(2)) for path in expand_braces(match.group(1))]
    return found


def _tests_of(path: Path) -> set[str]:
    return set(re.findall(r"^\s*def (test_\w+)\(", path.read_text(encoding="utf-8"), flags=re.M))


def missing_paths(texts: list[tuple[str, str]]) -> tuple[list[str], int]:
    every_test = set().union(*(_tests_of(path) for path in (ROOT / "tests").rglob("test_*.py")))
    missing, checked = [], 0
    for name, text in texts:
        for path, test in named_paths(name, text):
            checked += 1
            if not resolves(path):
                missing.append(f"{name}: {path}")
            elif test and test not in _tests_of(ROOT / path):
                missing.append(f"{name}: {path}::{test} (no such test)")
        for test in TEST_NAME.findall(text):
            checked += 1
            if test not in every_test:
                missing.append(f"{name}: {test} (no such test)")
    return missing, checked


def test_every_path_and_test_the_docs_name_exists():
    missing, checked = missing_paths(documents())
    assert missing == []
    assert checked > 300  # the docs name ~430 (with repeats): the pattern still finds them


def test_the_path_check_reports_what_is_missing():
    text = (
        "`docs/results/lastfm-seeds/s0.5-seed1` `docs/results/{lastfm,nope}/sweep.csv` "
        "`docs/results/lastfm-regrow/sS-dt50` `docs/results/lastfm-regrow/sS-dt99` "
        "`tests/test_docs.py::test_the_path_check_reports_what_is_missing` "
        "`tests/test_docs.py::\n  test_nothing` "  # an id broken across lines
        "`test_the_path_check_reports_what_is_missing` `test_nothing_at_all` "
        "`docs/results/ml-1m/cost` `benchmarks/nope.md` of someone/elsewhere"
    )
    missing, checked = missing_paths([("docs/x.md", text)])
    assert checked == 10
    assert missing == [
        "docs/x.md: docs/results/nope/sweep.csv",
        "docs/x.md: docs/results/lastfm-regrow/sS-dt99",
        "docs/x.md: tests/test_docs.py::test_nothing (no such test)",
        "docs/x.md: test_nothing_at_all (no such test)",
    ]


def command_lines(text: str) -> list[str]:
    """The ``dslgraph ...`` and ``python benchmarks|examples/X.py ...`` command lines of ``text``: in code
    blocks (continued lines joined, comments dropped), in inline code and on a docstring's indented lines."""
    lines = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S):
        # a comment may give the command a step ran: "# = dslgraph train ... \" and "#     --lr ..."
        lines += [re.sub(r"^#\s*=?\s*", "", line) for line in re.sub(r"\\\n#?\s*", " ", block).splitlines()]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += re.findall(r"`([^`]+)`", prose.replace("\n", " "))
    indented = re.findall(r"^(?: {4,}|Usage: )(.*)$", re.sub(r"\\\n\s*", " ", prose), flags=re.M)
    commands = []
    for line in lines + indented:
        line = re.sub(r"(^|\s)#(\s.*)?$", "", line.strip()).strip()
        for part in re.split(r"&&|;|=\s*(?=dslgraph|python)", line):
            match = COMMAND.match(part.strip())
            if match:
                commands.append(match.group(0))
    return commands


class _Parsed(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


def script_parser(script: str, monkeypatch) -> argparse.ArgumentParser | None:
    """The argument parser ``script``'s ``main`` builds, taken when it parses (nothing of the script runs);
    None for an example that runs ``dslgraph train`` (``run_example``)."""
    path = ROOT / script
    if "run_example(" in path.read_text(encoding="utf-8"):
        return None
    spec = importlib.util.spec_from_file_location(f"docs_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.syspath_prepend(str(path.parent))  # the benchmarks import their `common`
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)

    def parsed(self, *args, **kwargs):
        raise _Parsed(self)

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parsed)
        with pytest.raises(_Parsed) as caught:
            module.main()
    return caught.value.parser


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def _takes_a_value(parser: argparse.ArgumentParser, word: str) -> bool:
    return any(word in action.option_strings and action.nargs != 0 for action in parser._actions)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


Problem = tuple[str, str, str]  # document, command line, what is wrong


def command_problems(commands: list[tuple[str, str]], monkeypatch) -> tuple[list[Problem], int, int]:
    """Flags no parser of the command takes; for lines written out in full (no placeholder), what its parser
    refuses (a value out of its choices, a missing one), and for ``dslgraph train`` lines also what the
    settings' validation refuses. Returns the problems, the count of commands and of full ones."""
    subcommands, parsers = _subcommands(), {}
    problems, full = [], 0
    for name, line in commands:
        try:
            words = shlex.split(line)
        except ValueError:  # an apostrophe of the prose after the command
            words = line.split()
        is_train = False
        if words[0] == "dslgraph":
            command = next((i for i, word in enumerate(words) if word in subcommands), len(words))
            top = [word for word in words[1:command] if word.startswith("-")]
            named = any(PLACEHOLDER.search(word) for word in words[1:])  # `dslgraph ...`: the CLI named
            if not top and command == len(words) and not named or set(top) - _options(build_parser()):
                problems.append((name, line, f"no dslgraph command or flag {words[1:2]}"))
            if command == len(words):
                continue
            parser, arguments, is_train = (
                subcommands[words[command]],
                words[command + 1 :],
                words[command] == "train",
            )
        elif re.fullmatch(r"\w+/[A-Z]+\.py", words[1]):  # python examples/X.py: any of them
            continue
        elif not (ROOT / words[1]).is_file():
            problems.append((name, line, f"no script {words[1]}"))
            continue
        elif words[1] == "benchmarks/dsl_variants.py":  # VARIANT train FLAGS: a dslgraph command line
            if "train" not in words:
                continue
            parser, arguments, is_train = subcommands["train"], words[words.index("train") + 1 :], True
        else:
            if words[1] not in parsers:
                parsers[words[1]] = script_parser(words[1], monkeypatch)
            parser, arguments = parsers[words[1]], words[2:]
            if parser is None:  # an example script: dslgraph train with the script's defaults
                parser, is_train = subcommands["train"], True
        flags = {word.strip("[]").split("=")[0] for word in arguments}
        unknown = sorted(
            f for f in flags if re.fullmatch(r"--[a-z][a-z0-9-]*", f) and f not in _options(parser)
        )
        if unknown:
            problems.append((name, line, f"unknown flags {unknown}"))
        if unknown or words[0] == "dslgraph" and not is_train:  # `dslgraph eval` named in the prose
            continue
        if any(PLACEHOLDER.search(word) for word in arguments):
            continue
        if {"-h", "--help"} & flags or arguments and _takes_a_value(parser, arguments[-1]):
            continue  # help, or a flag named (`dslgraph train --output` holds its folder)
        full += 1
        try:
            settings = parser.parse_args(arguments)
            if is_train and not settings.resume and not settings.config:
                settings_from_args(settings)
        except (SystemExit, ValueError) as error:
            problems.append((name, line, f"refused: {error}"))
    return problems, len(commands), full


def test_every_command_line_of_the_docs_takes_its_flags(monkeypatch, capsys):
    commands = [(name, line) for name, text in documents() for line in command_lines(text)]
    problems, checked, full = command_problems(commands, monkeypatch)
    assert problems == [], capsys.readouterr().err
    # the docs give ~215, ~75 train lines and ~50 of the scripts' in full: the pattern finds them
    assert checked > 150 and full > 90


def test_the_command_check_reports_unknown_flags_and_refused_values(monkeypatch, capsys):
    text = (
        "```bash\ndslgraph train --dataset lastfm --sparsity 0.8 \\\n"
        "    --lr-decay 0.5   # a renamed flag\n```\n"
        "`dslgraph train --sampling users --epochs 1`, `dslgraph trian --epochs 1`,\n"
        "`dslgraph train --sparsity S --epochs 1` and\n"
        "    python benchmarks/most_popular.py --datasets lastfm --top 5\n"
        "    python benchmarks/most_popular.py --datasets lastfm --protocols loo\n"
        "    python benchmarks/most_popular.py --datasets lastfm --protocols full --output x.csv\n"
        "`python examples/lightgcn_lastfm.py --epochs 1 --init xavier`"
    )
    commands = [("docs/x.md", line) for line in command_lines(text)]
    problems, checked, full = command_problems(commands, monkeypatch)
    assert "argument --protocols: invalid choice: 'loo'" in capsys.readouterr().err
    assert (checked, full) == (8, 4)
    assert [what.split(":")[0] for _, _, what in problems] == [
        "unknown flags ['--lr-decay']",
        "refused",
        "no dslgraph command or flag ['trian']",
        "unknown flags ['--top']",
        "refused",
    ]
    assert "sampling" in problems[1][2]


def joined_usage_lines(source: str) -> list[str]:
    """The lines of a script's module docstring (``source``: the script) that end in a lone backslash: in a
    docstring that is no raw string, Python joins such a line with the next, so ``--help`` and ``__doc__``
    show a shell continuation as one line with a run of spaces in it; ``\\\\`` keeps the break."""
    module = ast.parse(source)
    docstring = module.body[0] if module.body and isinstance(module.body[0], ast.Expr) else None
    if docstring is None or not isinstance(docstring.value, ast.Constant):
        return []
    segment = ast.get_source_segment(source, docstring)
    if "r" in re.match(r"[rRbBuU]*", segment).group(0).lower():  # a raw string keeps its backslashes
        return []
    return [line.strip() for line in segment.splitlines() if re.search(r"(?<!\\)(?:\\\\)*\\$", line)]


def test_the_scripts_usage_lines_keep_their_line_breaks():
    joined = {
        f"{folder}/{path.name}": lines
        for folder in SCRIPT_FOLDERS
        for path in sorted((ROOT / folder).glob("*.py"))
        if (lines := joined_usage_lines(path.read_text(encoding="utf-8")))
    }
    assert joined == {}


def test_the_line_break_check_reports_a_lone_backslash():
    lone, escaped = "    python x.py --a 1 \\\n        --b 2\n", "    python x.py --a 1 \\\\\n        --b 2\n"
    source = f'"""Usage.\n\n{lone}{escaped}"""\n'
    assert joined_usage_lines(source) == ["python x.py --a 1 \\"]
    assert "1         --b" in ast.get_docstring(ast.parse(source))  # what the lone one does


def overwritten_without_saying(commands: list[tuple[str, str]], root: Path = ROOT) -> list[Problem]:
    """The lines that train into a folder under ``root`` holding a run already (docs/results/ holds the runs
    the commands recorded there made) without ``--overwrite``: ``dslgraph train --output`` and a sweep's
    ``--out`` (its ``runs/``) refuse such a folder without it, so the line fails as written."""
    problems = []
    for name, line in commands:
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        if "--overwrite" in words or "--resume" in words:
            continue
        if words[:2] == ["dslgraph", "train"] or "benchmarks/dsl_variants.py" in words[:2]:
            flag = "--output"
        elif words[1:2] == ["benchmarks/sweep_sparsity.py"] and not {"--collect", "--merge"} & set(words):
            flag = "--out"
        else:
            continue
        at = words.index(flag) + 1 if flag in words else len(words)
        if at == len(words) or PLACEHOLDER.search(words[at]):
            continue
        folder = root / words[at]
        runs = list(folder.glob("runs/*")) if flag == "--out" else [folder]  # a sweep's: its runs/NAME
        if any(earlier_run_files(run) for run in runs):
            problems.append((name, line, f"{flag} {words[at]} holds runs: the line needs --overwrite"))
    return problems


def test_every_command_line_training_into_committed_runs_says_overwrite():
    # dslgraph train (22nd session's find) and sweep_sparsity.py refuse a folder holding an earlier run
    commands = [(name, line) for name, text in documents() for line in command_lines(text)]
    assert overwritten_without_saying(commands) == []


def test_the_overwrite_check_reports_a_rerun_into_a_folder_of_runs(tmp_path):
    (tmp_path / "sweep" / "runs" / "dense").mkdir(parents=True)
    (tmp_path / "sweep" / "runs" / "dense" / "metrics.json").write_text("{}")
    commands = [
        "dslgraph train --epochs 1 --output sweep/runs/dense",
        "dslgraph train --epochs 1 --output sweep/runs/dense --overwrite",
        "dslgraph train --epochs 1 --output sweep/runs/new",
        "python benchmarks/sweep_sparsity.py --sparsities 0 --out sweep",
        "python benchmarks/sweep_sparsity.py --collect sweep/runs/dense --out sweep",
        "python benchmarks/dsl_variants.py prefix train --sparsity 0.8 --output sweep/runs/dense",
    ]
    problems = overwritten_without_saying([("docs/x.md", line) for line in commands], tmp_path)
    assert [line for _, line, _ in problems] == [commands[0], commands[3], commands[5]]


# the columns of a results.md table whose numbers a recorded run must hold, by their header
RECORDED_COLUMNS = {
    "recall@20": "recall@20",
    "capped recall@20": "capped_recall@20",
    "hr@20": "hr@20",
    "ndcg@20": "ndcg@20",
    "best epoch": "epoch",
    "train s": "seconds",
}
NUMBER = re.compile(r"^\*{0,2}(\d+(?:\.\d+)?)\*{0,2}$")


def recorded_runs(root: Path = ROOT) -> list[dict[str, float]]:
    """Every evaluation the runs under docs/results/ recorded: each ``metrics.json``'s best one (with its
    ``train_seconds``) and its history's, the rows of the sweeps' and the benchmarks' CSVs (docs/benchmarks/),
    and the per-epoch lines of the logs of runs stopped early (``stopped_runs.txt``)."""
    records = []
    for path in (root / "docs" / "results").rglob("metrics.json"):
        summary = json.loads(path.read_text(encoding="utf-8"))
        for split in ("test", "validation"):
            if summary.get(split):
                seconds = {"seconds": summary["train_seconds"]} if split == "test" else {}
                records.append({**summary[split], "epoch": summary["best_epoch"], **seconds})
        for entry in summary.get("history", []):
            records += [
                {**entry[split], "epoch": entry["epoch"]}
                for split in ("test", "validation")
                if entry.get(split)
            ]
    for path in [*(root / "docs" / "results").rglob("*.csv"), *(root / "docs" / "benchmarks").glob("*.csv")]:
        for row in csv.DictReader(path.read_text(encoding="utf-8").splitlines()):
            values = {
                name: float(value)
                for name, value in row.items()
                if name and re.fullmatch(r"[\d.]+", value or "")
            }
            values["epoch"] = values.get("best_epoch", values.get("epoch", -1))
            values["seconds"] = values.get("train_seconds", -1)
            records.append(values)
    for path in (root / "docs" / "results").rglob("stopped_runs.txt"):
        for epoch, values in re.findall(
            r"^epoch (\d+) test (.*)$", path.read_text(encoding="utf-8"), flags=re.M
        ):
            metrics = {name: float(value) for name, value in re.findall(r"([\w@]+)=([\d.]+)", values)}
            records.append({**metrics, "epoch": int(epoch)})
    return records


def markdown_tables(text: str) -> Iterator[tuple[list[str], list[tuple[str, list[str]]]]]:
    """Each table of ``text``: its header's cells in lower case, and its rows, as written and as cells."""
    lines = text.splitlines()
    for at, line in enumerate(lines[:-1]):
        if not (line.startswith("|") and lines[at + 1].startswith("|---")):
            continue
        rows = []
        for row in lines[at + 2 :]:
            if not row.startswith("|"):
                break
            rows.append((row, [cell.strip() for cell in row.strip("|").split("|")]))
        yield [cell.strip().lower() for cell in line.strip("|").split("|")], rows


def holds(record: dict[str, float], shown: dict[str, str]) -> bool:
    """``record`` has every value of ``shown`` (a table row's numbers, as written) to the digits shown."""
    for name, value in shown.items():
        low, high = interval(value)
        if name not in record or not low - 1e-9 <= record[name] <= high + 1e-9:
            return False
    return True


def unrecorded_rows(text: str, records: list[dict[str, float]]) -> tuple[list[str], int]:
    """The rows of ``text``'s tables whose Recall@20 / HR@20 / NDCG@20 (and best epoch, train s), as written,
    no recorded evaluation holds (a row saying "output not kept" has no run to hold them), and the count of
    rows checked."""
    unrecorded, checked = [], 0
    for header, rows in markdown_tables(text):
        columns = {
            index: RECORDED_COLUMNS[cell] for index, cell in enumerate(header) if cell in RECORDED_COLUMNS
        }
        if not {"recall@20", "hr@20"} & set(columns.values()) or "ndcg@20" not in columns.values():
            continue
        for row, cells in rows:
            shown = {
                columns[index]: NUMBER.match(cell).group(1)
                for index, cell in enumerate(cells)
                if index in columns and NUMBER.match(cell)
            }
            if len(shown) < 2 or "output not kept" in row:
                continue
            checked += 1
            if not any(holds(record, shown) for record in records):
                unrecorded.append(row)
    return unrecorded, checked


def test_every_result_in_the_tables_of_results_md_was_recorded():
    # Recall@20 with the NDCG@20 beside it, best epoch and train s, as the row gives them: the same run's
    text = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    records = recorded_runs()
    unrecorded, checked = unrecorded_rows(text, records)
    assert unrecorded == []
    # ~250 runs and their histories, ~80 rows: the folders are still read, the tables still found
    assert len(records) > 2000 and checked > 60


def test_the_results_check_reports_a_row_no_run_recorded():
    records = [{"recall@20": 0.26614, "ndcg@20": 0.20461, "epoch": 80, "seconds": 332.16}]
    table = (
        "| run | best epoch | Recall@20 | NDCG@20 | train s |\n|---|---|---|---|---|\n"
        "| as recorded | 80 | **0.2661** | 0.2046 | 332.16 |\n"
        "| another run's NDCG | 80 | 0.2661 | 0.2064 | 332.16 |\n"
        "| another epoch | 75 | 0.2661 | 0.2046 | — |\n"
        "| another time | 80 | 0.2661 | 0.2046 | 143.32 |\n"
        "| read off a bar (output not kept) | 80 | 0.2700 | 0.2100 | |\n"
    )
    unrecorded, checked = unrecorded_rows(table, records)
    assert checked == 4
    assert [row.split("|")[1].strip() for row in unrecorded] == [
        "another run's NDCG",
        "another epoch",
        "another time",
    ]


def interval(value: str) -> tuple[float, float]:
    """The values that round to ``value`` as written."""
    half = 0.5 * 10 ** -len(value.partition(".")[2])
    return float(value) - half, float(value) + half


def wrong_ratios(text: str) -> tuple[list[str], int]:
    """The rows of ``text``'s tables whose "× dense" figure is not their Recall@20 over that of the table's
    dense row (the one at 1.00), as both are written, and the count of rows checked."""
    wrong, checked = [], 0
    for header, rows in markdown_tables(text):
        ratio = next((index for index, cell in enumerate(header) if cell.startswith("× dense")), None)
        if ratio is None or "recall@20" not in header:
            continue
        recall = header.index("recall@20")
        figures = []
        for row, cells in rows:
            shown = [NUMBER.match(cells[index]) for index in (recall, ratio)]
            if all(shown):
                figures.append((row, *(match.group(1) for match in shown)))
        dense = [value for _, value, times in figures if float(times) == 1]
        for row, value, times in figures if len(dense) == 1 else []:
            checked += 1
            (low, high), (dense_low, dense_high) = interval(value), interval(dense[0])
            times_low, times_high = interval(times)
            if low / dense_high > times_high or high / dense_low < times_low:
                wrong.append(row)
    return wrong, checked


def test_every_ratio_to_dense_in_results_md_is_the_rows_recall_over_dense():
    wrong, checked = wrong_ratios((ROOT / "docs" / "results.md").read_text(encoding="utf-8"))
    assert wrong == []
    assert checked > 20  # the sweeps of LastFM, ML-100K and Gowalla (25 rows): the tables are still found


def test_the_ratio_check_reports_a_ratio_the_recalls_do_not_give():
    table = (
        "| sparsity | Recall@20 | NDCG@20 | × dense R@20 |\n|---|---|---|---|\n"
        "| 0 | **0.2661** | 0.2046 | 1.00 |\n"
        "| 0.5 | 0.2584 | 0.1957 | 0.97 |\n"
        "| 0.8 | 0.2193 | 0.1663 | 0.85 |\n"
        "| 0.9 | 0.1722 | 0.1246 | 0.647 |\n"
        "| 0.95 | 0.1179 / 0.1180 | 0.0811 | 0.4 |\n"
    )
    wrong, checked = wrong_ratios(table)
    assert checked == 4
    assert wrong == ["| 0.8 | 0.2193 | 0.1663 | 0.85 |"]


# an argument of a docstring's "Args:" section: `name (type): text` (PyG's style) or `name: text`, and the
# default its text names, `(default: :obj:`3000`)` or `(default: ``"NYC"``)`
ARG_ENTRY = re.compile(r"^    (\*{0,2}\w+(?:, \w+)*)(?: \([^)]*\))?:(?:\s|$)")
DOCUMENTED_DEFAULT = re.compile(r"\(defaults?: (?::obj:)?`+([^`]*)`+")


def documented_arguments(doc: str) -> dict[str, str]:
    """The entries of ``doc``'s "Args:" section: the argument name(s) of each, and its text."""
    lines = inspect.cleandoc(doc).splitlines()
    if "Args:" not in lines:
        return {}
    entries: dict[str, str] = {}
    current = None
    for line in lines[lines.index("Args:") + 1 :]:
        if line and not line.startswith(" "):  # the next section (Returns:, ...)
            break
        match = ARG_ENTRY.match(line)
        if match:
            current = match.group(1)
            entries[current] = line[match.end() :]
        elif current is not None:
            entries[current] += " " + line.strip()
    return entries


def docstring_problems(label: str, doc: str, signature: inspect.Signature) -> tuple[list[str], int]:
    """The arguments ``doc`` documents that ``signature`` lacks, and the defaults it states (as Python
    literals) that differ from the signature's. Returns the problems and the count of defaults compared."""
    problems, compared = [], 0
    for names, text in documented_arguments(doc).items():
        names = [name.lstrip("*") for name in names.split(", ")]
        stated = DOCUMENTED_DEFAULT.search(text)
        # `w1, w2 (float): ... (defaults: :obj:`1e-6, 1`)`: one default a name
        defaults = stated and (stated.group(1).split(",") if len(names) > 1 else [stated.group(1)])
        for i, name in enumerate(names):
            if name not in signature.parameters:
                problems.append(f"{label}: documents {name!r}, which it does not take")
                continue
            if not defaults or i >= len(defaults):
                continue
            try:
                value = ast.literal_eval(defaults[i].strip())
            except (ValueError, SyntaxError):  # not a literal: `model.input_graph(data)`, `2**20`
                continue
            actual = signature.parameters[name].default
            compared += 1
            same = actual is not inspect.Parameter.empty and value == actual
            if not same or isinstance(value, bool) != isinstance(actual, bool):
                problems.append(f"{label}: {name} documented as {value!r}, the default is {actual!r}")
    return problems, compared


def documented_callables() -> list[tuple[str, str, inspect.Signature]]:
    """(label, docstring, signature) of every public class (its constructor), method and function of
    dslgraph."""
    found = []
    for module in pkgutil.walk_packages(dslgraph.__path__, "dslgraph."):
        if module.name == "dslgraph.__main__":  # runs the CLI when imported
            continue
        namespace = vars(importlib.import_module(module.name))
        for name, obj in namespace.items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.name:
                continue
            if inspect.isfunction(obj):
                found.append((f"{module.name}.{name}", obj.__doc__, obj))
            elif inspect.isclass(obj):
                found.append((f"{module.name}.{name}", obj.__doc__, obj.__init__))
                for method_name, method in vars(obj).items():
                    method = getattr(method, "__func__", method)  # a classmethod's or staticmethod's
                    if inspect.isfunction(method) and not method_name.startswith("_"):
                        found.append((f"{module.name}.{name}.{method_name}", method.__doc__, method))
    return [(label, doc, inspect.signature(fn)) for label, doc, fn in found if doc]


def test_every_documented_argument_and_default_matches_the_signature():
    problems, compared = [], 0
    for label, doc, signature in documented_callables():
        found, count = docstring_problems(label, doc, signature)
        problems += found
        compared += count
    assert problems == []
    assert compared > 100  # the docstrings state ~140 literal defaults: the pattern still finds them


def test_the_docstring_check_reports_wrong_defaults_and_unknown_arguments():
    def documented(rho0: float = 0.5, *, growth: str = "gradient", w1: float = 1e-6, w2: float = 1.0,
                   flag: bool = False, size: int = 2**20) -> None:  # fmt: skip
        """A function.

        Args:
            rho0 (float, optional): Initial update fraction. (default: :obj:`0.4`)
            growth: How weights grow,
                over two lines. (default: ``"random"``)
            w1, w2 (float, optional): Weights. (defaults: :obj:`1e-6, 2`)
            flag (bool, optional): A flag. (default: :obj:`0`)
            size (int, optional): Not a literal. (default: :obj:`2**20`)
            chunk_rows (int, optional): Gone. (default: :obj:`4096`)

        Returns:
            nothing (default: :obj:`1`)
        """

    problems, compared = docstring_problems("f", documented.__doc__, inspect.signature(documented))
    assert compared == 5
    assert problems == [
        "f: rho0 documented as 0.4, the default is 0.5",
        "f: growth documented as 'random', the default is 'gradient'",
        "f: w2 documented as 2, the default is 1.0",
        "f: flag documented as 0, the default is False",
        "f: documents 'chunk_rows', which it does not take",
    ]


def recbole_table() -> list[tuple[list[str], list[str], str]]:
    """The rows of README's "Coming from RecBole" table: RecBole's names of settings (``topk: [10, 20]``'s
    ``topk``; not its functions), dslgraph's names in the row (as written: ``--output``, ``data_options``) and
    the dslgraph cell's text."""
    (section,) = re.findall(
        r"### Coming from RecBole\n(.*?)\n###", (ROOT / "README.md").read_text(encoding="utf-8"), re.S
    )
    ((header, rows),) = list(markdown_tables(section))
    table = []
    for _, (recbole, ours) in rows:
        names = [
            m for code in re.findall(r"`([^`]+)`", recbole) for m in re.findall(r"^(\w+)(?::.*)?$", code)
        ]
        meant = [m for code in re.findall(r"`([^`]+)`", ours) for m in re.findall(r"^-*([\w-]+)", code)]
        table.append((names, meant, ours))
    return table


def test_every_recbole_name_of_the_readme_is_refused_naming_dslgraphs(capsys):
    # README: "one of RecBole's names given to dslgraph train, in a config file or as a flag, or to
    # TrainConfig, is refused naming dslgraph's"; checkpoint_dir in a config file or TrainConfig named none
    from dslgraph.config import ConfigError, validate
    from dslgraph.train import TrainConfig

    checked = 0
    for names, meant, ours in recbole_table():
        for name in names:
            if ours.startswith("the same"):
                assert name in dslgraph.config.FIELDS
                continue
            with pytest.raises(ConfigError) as config_file:
                validate({name: 1})
            with pytest.raises(SystemExit):
                main(["train", "--" + name.replace("_", "-"), "1"])
            with pytest.raises(TypeError) as train_config:
                TrainConfig(**{name: 1})
            answers = {
                "a config file": str(config_file.value).split("; known settings are")[0],
                "a flag": capsys.readouterr().err.splitlines()[-1],
                "TrainConfig": str(train_config.value),
            }
            for where, answer in answers.items():
                checked += 1
                named = ours.startswith("none") and "has no setting here" in answer
                spelt = {
                    spelling for m in meant for spelling in (m, m.replace("-", "_"), m.replace("_", "-"))
                }
                assert named or any(re.search(rf"\b{re.escape(m)}\b", answer) for m in spelt), (
                    name,
                    where,
                    answer,
                )
    assert checked > 50  # 20 names, three ways each: the table is still found


def _named_in(document: str, pattern: str) -> list[str]:
    """The backticked names (``--epochs``, ``sep``) in the one passage of ``document`` (its text in one line)
    that ``pattern`` finds."""
    text = " ".join((ROOT / document).read_text(encoding="utf-8").split())
    (passage,) = re.findall(pattern, text)
    return re.findall(r"`([^`]+)`", passage)


def test_the_lists_of_names_the_docs_give_are_the_code_s():
    # the lists README and docs/models.md spell out, against the code that decides them
    from dslgraph.cli import RESUMABLE
    from dslgraph.config import MODEL_ARGUMENTS
    from dslgraph.data.datasets import READ_OPTIONS
    from dslgraph.metrics import METRICS, SAMPLED_METRICS

    def flags(names):
        return ["--" + name.replace("_", "-") for name in names]

    assert _named_in("README.md", r"from `last\.pt`; only (.*?) may change") == flags(RESUMABLE)
    read = _named_in("README.md", r"`--data-option` takes its arguments: (.*?);")
    k_core = ["min_user_interactions", "min_item_interactions"]  # "the k-core minimums"
    assert sorted(read + k_core) == sorted(READ_OPTIONS)
    reported = _named_in("README.md", r"every evaluation reports (.*?) at each K")
    sampled = _named_in("README.md", r"at each K \((.*?) under leave-one-out")
    assert (reported, sorted(sampled)) == (list(METRICS), sorted(SAMPLED_METRICS))
    arguments = _named_in("docs/models.md", r"Model arguments beyond (.*?) go through")
    assert arguments == flags(MODEL_ARGUMENTS)


def test_the_readme_dsl_example_runs_on_a_model_of_ones_own():
    """README's "DSL in your own model" block, run as written, with its placeholders (``MyGNN(...)``,
    ``loss``, ``loader``, ``epochs``, ``batches_per_epoch``) given: a table and an MLP, two small epochs."""
    (section,) = re.findall(
        r"### DSL in your own model\n(.*?)\n##", (ROOT / "README.md").read_text(encoding="utf-8"), re.S
    )
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)

    class MyGNN(torch.nn.Module):
        def __init__(self, _placeholder):
            super().__init__()
            self.embedding = torch.nn.Embedding(30, 8)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))

    def loss(model, batch):
        return model.mlp(model.embedding(batch)).square().mean()

    generator = torch.Generator().manual_seed(0)
    namespace = {
        "torch": torch,
        "MyGNN": MyGNN,
        "loss": loss,
        "epochs": 2,
        "batches_per_epoch": 4,
        "loader": [torch.randint(30, (16,), generator=generator) for _ in range(8)],
    }
    exec(code.replace("update_interval=3000", "update_interval=3"), namespace)
    model, dsl = namespace["model"], namespace["dsl"]
    assert type(model.embedding).__name__ == "SparseEmbedding"
    assert [type(layer).__name__ for layer in model.mlp[::2]] == ["SparseLinear", "SparseLinear"]
    assert dsl.iteration == 8 and [update["iteration"] for update in dsl.updates] == [3, 6]


def test_the_readme_training_example_runs_with_dsl_as_the_trainer_steps_it(small_data, tmp_path):
    """README's "Training in Python" block, run as written on the small graph for two epochs: its DSL
    controller is the trainer's length, attached to the trainer's optimizer, and updates."""
    (section,) = re.findall(r"### Training in Python\n(.*?)\n###", (ROOT / "README.md").read_text(), re.S)
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    code = code.replace("dslgraph.data.LastFM()[0]", "small_data").replace('"runs/python"', "out")
    code = code.replace("epochs=50, eval_every=10", "epochs=2, eval_every=1, batch_size=64, progress=False")
    namespace = {"small_data": small_data, "out": tmp_path}
    code = code.replace("update_interval=50", "update_interval=3")
    with warnings.catch_warnings():
        # a total_steps other than the run's warns (torch's own warnings, such as that sparse CSR tensors are
        # in beta, fire once a process, where the test runs alone)
        warnings.filterwarnings("error", ".*total_steps", UserWarning)
        exec(code, namespace)
    trainer, dsl = namespace["trainer"], namespace["dsl"]
    assert dsl.total_steps == trainer.total_steps == 8 and dsl.optimizer is trainer.optimizer
    assert [update["iteration"] for update in dsl.updates] == [3, 6]
    assert namespace["summary"]["epochs"] == 2 and (tmp_path / "best.pt").exists()
    # run again, it gives the same numbers: the block seeds the model's initialisation as well
    torch.manual_seed(1)
    again = {"small_data": small_data, "out": tmp_path / "again"}
    exec(code, again)
    assert again["summary"]["test"] == namespace["summary"]["test"]


def test_the_readme_test_command_is_the_one_ci_runs():
    # README: "The second command is what CI runs (`.ci/run`, ...)"; .ci/run gives it "verbatim"
    (quickstart,) = re.findall(
        r"## Quickstart\n(.*?)\n##", (ROOT / "README.md").read_text(encoding="utf-8"), re.S
    )
    (block,) = re.findall(r"```bash\n(.*?)```", quickstart, flags=re.S)
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2 and commands[1].endswith("python -m pytest -q")
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def make_api():
    """docs/make_api.py, imported (it is a script, not a module of the package)."""
    spec = importlib.util.spec_from_file_location("docs_make_api", ROOT / "docs" / "make_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_reference_is_current(tmp_path):
    # docs/api.md is generated from the docstrings and signatures: a change to either must regenerate it.
    # A model built first: PyG gives a MessagePassing class generated methods (`collect`) then, which the
    # reference listed in a whole run of the tests and not in this file's alone
    dslgraph.nn.LightGCN(2, 3)
    make_api().main(["--output", str(tmp_path / "api.md")])
    fresh = (tmp_path / "api.md").read_text(encoding="utf-8").splitlines()
    committed = (ROOT / "docs" / "api.md").read_text(encoding="utf-8").splitlines()
    changed = list(difflib.unified_diff(committed, fresh, "docs/api.md", "regenerated", n=1, lineterm=""))
    assert not changed, "docs/api.md is out of date: run `python docs/make_api.py`\n" + "\n".join(
        changed[:30]
    )


def test_the_api_reference_follows_the_docstrings_and_signatures(monkeypatch):
    api = make_api()
    monkeypatch.setattr(dslgraph.data.load_dataset, "__doc__", "Loads one.\n\n    Not this paragraph.")
    monkeypatch.setattr(dslgraph.sparse.SparseEmbedding.density, "__doc__", "Changed :meth:`~a.b.nnz`.")
    text = api.render()
    assert "\nLoads one.\n" in text and "Not this paragraph" not in text
    assert "- `density() -> float`:\n  Changed `nnz`.\n" in text
    # re-exported names are described once, where their code is
    assert text.count("### `DenseEmbedding`") == text.count("### `bpr_loss`") == 1


def test_the_api_reference_shows_defaults_without_addresses():
    api = make_api()
    tensor, thing = torch.zeros(2), object()  # reprs that change with torch, and one with an address

    def documented(a, /, b: int = 1, *, fn=print, dtype=torch.float32, t=tensor, w=thing, _x=0):
        """A function."""

    assert api.signature(documented, "f") == (
        "f(a, /, b: int = 1, *, fn=print, dtype=torch.float32, t=<Tensor>, w=<object>)"
    )
    assert api.shown(("a", ["it's"], {"k": dslgraph.nn.LightGCN})) == """("a", ["it's"], {"k": LightGCN})"""


def test_every_public_name_has_a_docstring_for_help():
    # dslgraph.data.interaction_csr, exported, showed help() its signature alone; docs/api.md lists every
    # class, function, method, property and constant of the packages' __all__ with the words on it
    assert make_api().undocumented() == []


def test_the_docstring_check_reports_what_is_undocumented(monkeypatch):
    monkeypatch.setattr(dslgraph.train.Trainer.fit, "__doc__", None)
    monkeypatch.setattr(dslgraph.nn.Recommender, "__doc__", " ")
    monkeypatch.setattr(dslgraph.sparse.SparseEmbedding.nnz.fget, "__doc__", None)
    assert make_api().undocumented() == [
        "dslgraph.nn.Recommender",
        "dslgraph.sparse.SparseEmbedding.nnz",
        "dslgraph.train.Trainer.fit",
    ]


def test_every_train_config_field_is_documented_with_the_values_it_takes():
    """help(TrainConfig) and docs/api.md gave the fields with their defaults alone (what sampling='user'
    means, lr_schedule's values: only in dslgraph train --help). Every field has an entry in its Args, stating
    its default (which test_every_documented_argument_and_default_matches_the_signature checks) and naming
    every value the CLI's field of the same name allows, where it allows a few."""
    from dataclasses import fields

    from dslgraph.config import FIELDS
    from dslgraph.train import TrainConfig

    documented = documented_arguments(TrainConfig.__doc__)
    assert list(documented) == [field.name for field in fields(TrainConfig)]
    for name, text in documented.items():
        assert re.search(r"\(default: :obj:`[^`]+`\)$", text), name
        choices = FIELDS[name].choices if name in FIELDS else None  # progress is no setting of the CLI
        for choice in choices or ():
            assert f'``"{choice}"``' in text, (name, choice)
