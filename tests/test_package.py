import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch

import dslgraph
from dslgraph.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_import_dslgraph_is_enough_for_its_subpackages():
    # README: `data = dslgraph.data.Gowalla(root="data")[0]` after a plain `import dslgraph`, as with PyG
    code = "import dslgraph; print(dslgraph.data.LastFM.__name__, dslgraph.nn.LightGCN.__name__)"
    root = str(ROOT)
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["LastFM", "LightGCN"]


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attr in parts[split:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_name_the_docs_give_exists():
    # docs/dsl.md named `dslgraph.metrics.cost_report`, which only dslgraph.metrics.cost held
    names = {name for doc in DOCS for name in re.findall(r"\bdslgraph(?:\.\w+)+", doc.read_text())}
    assert sorted(name for name in names if not _resolves(name)) == []


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports, anywhere in it (``from torch import nn`` counts as ``torch.nn``)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package holding path, up level - 1 folders
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


# STYLE.md: data -> model -> train loop <-> DSL engine -> metrics. The sparse storage and the DSL engine know
# no model and no trainer; models and metrics know neither each other nor the trainer (the models' losses
# live in dslgraph.nn.losses); datasets hold no torch.nn modules. Each layer: the modules it may not import.
# The sparse layer needs nothing of data either: it loaded all of dslgraph.data, PyG and pandas for one
# integer test (3290 modules and ~7 s, against 1137 and ~3 s on torch alone, on CPU-2), which DSL on a
# plain torch model does without.
LAYERS = {
    "dslgraph/nn": ("dslgraph.train", "dslgraph.metrics", "dslgraph.cli", "dslgraph.config"),
    "dslgraph/sparse": (
        "dslgraph.data",
        "dslgraph.nn",
        "dslgraph.train",
        "dslgraph.metrics",
        "dslgraph.cli",
        "dslgraph.config",
    ),
    "dslgraph/data": (
        "torch.nn",
        "dslgraph.nn",
        "dslgraph.sparse",
        "dslgraph.train",
        "dslgraph.metrics",
        "dslgraph.cli",
        "dslgraph.config",
    ),
    "dslgraph/metrics": ("dslgraph.nn", "dslgraph.train", "dslgraph.cli", "dslgraph.config"),
    "dslgraph/train": ("dslgraph.cli",),
}


def _within(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == module or name.startswith(f"{module}.") for module in modules)


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_modules_import_only_the_layers_below_them(layer):
    # UltraGCN wrote its neighbour cache with the trainer's save_checkpoint (dslgraph.train.checkpoint)
    found = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / layer).rglob("*.py")
        for name in _imports(path)
        if _within(name, LAYERS[layer])
    )
    assert found == []


# statements whose dslgraph modules are checked: each package alone, and the top-level package's names
STATEMENTS = [
    *(f"import {layer.replace('/', '.')}" for layer in sorted(LAYERS)),
    "import dslgraph",
    "import dslgraph; dslgraph.load_run",
    "from dslgraph import sparse",
]


@pytest.fixture(scope="module")
def loaded_by() -> dict[str, list[str]]:
    """The dslgraph modules loaded by each of :data:`STATEMENTS`, each run with no dslgraph module loaded. One
    process runs them all, so that torch and PyG (~10 s on 2 CPU cores) are imported once."""
    code = (
        "import json, sys\n"
        "found = {}\n"
        "for statement in json.loads(sys.argv[1]):\n"
        "    ours = lambda: sorted(m for m in sys.modules if m == 'dslgraph' or m.startswith('dslgraph.'))\n"
        "    for name in ours():\n"
        "        del sys.modules[name]\n"
        "    exec(statement, {})\n"
        "    found[statement] = ours()\n"
        "print(json.dumps(found))\n"
    )
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    }
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(STATEMENTS)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_importing_a_layer_loads_no_layer_above_it(layer, loaded_by):
    # the models imported the losses from dslgraph.train.losses, which ran dslgraph/train/__init__.py (the
    # trainer, checkpoints, the metrics); and dslgraph/__init__.py loaded every subpackage and the CLI
    # before `import dslgraph.nn` reached nn
    package = layer.replace("/", ".")
    loaded = loaded_by[f"import {package}"]
    assert package in loaded
    assert [name for name in loaded if _within(name, LAYERS[layer])] == []


def test_import_dslgraph_loads_its_subpackages_at_first_use(loaded_by):
    assert loaded_by["import dslgraph"] == ["dslgraph"]
    assert "dslgraph.cli" in loaded_by["import dslgraph; dslgraph.load_run"]
    assert "dslgraph.sparse" in loaded_by["from dslgraph import sparse"]


def test_no_module_imports_a_private_name_of_another():
    # dslgraph.data.datasets imported _collapse and _renumber of dslgraph.data.interactions and _tokenize,
    # _check_ids and _check_duplicates of dslgraph.data.io; dslgraph.data.protocols _holdout_latest
    found = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / "dslgraph").rglob("*.py")
        for name in _imports(path)
        if _within(name, ("dslgraph",)) and re.fullmatch(r"_(?!_)\w*", name.rpartition(".")[2])
    )
    assert found == []


def test_no_two_modules_define_a_public_name_alike():
    # dslgraph.nn.base.Recommender, the models' base class, and dslgraph.train.trainer.Recommender, the
    # protocol of what the trainer asks of a model, were two unrelated classes of one name
    defined: dict[str, list[str]] = {}
    for path in sorted((ROOT / "dslgraph").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef) and not node.name.startswith("_"):
                defined.setdefault(node.name, []).append(path.relative_to(ROOT).as_posix())
    assert {name: paths for name, paths in defined.items() if len(paths) > 1} == {}


# Packaging: what `pip install dslgraph` gets, built from the files a clone has (the wheel and sdist hooks
# take ~3 s together), not from whatever an editable install happens to see in the source tree.
SOURCE_FILES = ["pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "CHANGELOG.md"]
# the embedded LastFM split: its place in the wheel, and in the repository (pyproject.toml maps one to the
# other)
EMBEDDED = {
    f"dslgraph/data/lastfm/{name}": f"datasets/lastfm/{name}"
    for name in ("README.md", "raw/data1.txt", "raw/test1.txt")
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    source = tmp_path_factory.mktemp("source")
    for name in SOURCE_FILES:
        shutil.copy2(ROOT / name, source / name)
    for folder in ("dslgraph", "datasets", "tests"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    # what a checkout that has run holds: byte-code caches, none of which may ship
    (source / "dslgraph" / "__pycache__").mkdir()
    (source / "dslgraph" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"stale")
    out = tmp_path_factory.mktemp("dist")
    hooks = (
        f"from setuptools import build_meta as b; b.build_wheel({str(out)!r}); b.build_sdist({str(out)!r})"
    )
    done = subprocess.run([sys.executable, "-c", hooks], cwd=source, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return {"wheel": next(out.glob("*.whl")), "sdist": next(out.glob("*.tar.gz"))}


def _python_files() -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "dslgraph").rglob("*.py"))


def test_wheel_holds_the_package_its_embedded_data_and_licences_and_nothing_else(built):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = set(wheel.namelist())
        for name, source in EMBEDDED.items():  # byte for byte: the LastFM files keep their CRLF line endings
            assert wheel.read(name) == (ROOT / source).read_bytes(), name
        metadata = wheel.read(f"dslgraph-{dslgraph.__version__}.dist-info/METADATA").decode()
    info = f"dslgraph-{dslgraph.__version__}.dist-info/"
    assert {n for n in names if not n.startswith(info)} == set(_python_files()) | set(EMBEDDED)
    assert {f"{info}licenses/LICENSE", f"{info}licenses/datasets/lastfm/README.md"} <= names
    assert f"\nVersion: {dslgraph.__version__}\n" in metadata
    assert "\nLicense-Expression: MIT AND LicenseRef-HetRec2011-LastFM\n" in metadata


def test_sdist_holds_the_package_its_data_and_licence_but_no_partial_test_suite(built):
    with tarfile.open(built["sdist"]) as sdist:
        names = {name.partition("/")[2] for name in sdist.getnames()}
    assert set(_python_files()) | set(EMBEDDED.values()) | set(SOURCE_FILES) <= names
    assert not [n for n in names if n.startswith("tests") or "__pycache__" in n or n.endswith(".pyc")]


def test_installed_wheel_trains_offline_on_its_own_lastfm_copy(built, tmp_path):
    # the LastFM split was read from the repository's datasets/ folder, which an installed wheel lacks: a
    # non-editable install then tried to download it
    site = tmp_path / "site"
    with zipfile.ZipFile(built["wheel"]) as wheel:
        wheel.extractall(site)  # a pure-Python wheel installed, less its scripts
    code = (
        "import json, dslgraph, dslgraph.data.datasets as d\n"
        "def no_download(url, folder): raise RuntimeError('download attempted: ' + url)\n"
        "d.download_url = no_download\n"
        "print(json.dumps([dslgraph.__file__, d.dataset_statistics(d.load_dataset())]))\n"
    )
    env = os.environ | {"PYTHONPATH": str(site), "DSLGRAPH_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    location, statistics = json.loads(done.stdout.splitlines()[-1])
    assert Path(location).is_relative_to(site)  # the wheel's copy, not the source tree's
    assert (statistics["users"], statistics["items"], statistics["train"], statistics["test"]) == (
        1892,
        4489,
        42135,
        10533,
    )


def _requirements(metadata: str) -> dict[str, str | None]:
    """Each Requires-Dist's import name and its extra (None for a dependency)."""
    found = {}
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist: "):
            name = re.match(r"[A-Za-z0-9._-]+", line.removeprefix("Requires-Dist: ")).group()
            extra = re.search(r"extra == \"(\w+)\"", line)
            found.setdefault(name.lower().replace("-", "_"), extra and extra.group(1))
    return found


def _third_party_imports() -> dict[str, bool]:
    """Each third-party module dslgraph imports, and whether some module imports it at load time."""
    imported: dict[str, bool] = {}
    for path in (ROOT / "dslgraph").rglob("*.py"):
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in (
                {name.partition(".")[0] for name in names} - set(sys.stdlib_module_names) - {"dslgraph"}
            ):
                imported[name] = imported.get(name, False) or id(node) in top_level
    return imported


def test_declared_dependencies_are_what_the_package_imports(built):
    # matplotlib was a dependency that dslgraph never imported (it only draws the benchmarks' plots); an
    # optional one (torch-sparse) must only be imported where it is used. networkx is declared though not
    # imported: it is part of the stack dslgraph is made for (PyG's to_networkx on its graphs)
    with zipfile.ZipFile(built["wheel"]) as wheel:
        required = _requirements(wheel.read(f"dslgraph-{dslgraph.__version__}.dist-info/METADATA").decode())
    imported = _third_party_imports()
    dependencies = {name for name, extra in required.items() if extra is None}
    assert dependencies == set(imported) - {"torch_sparse"} | {"networkx"}
    assert required["torch_sparse"] == "sparse" and not imported["torch_sparse"]
    assert required["matplotlib"] == "bench"


@pytest.fixture
def readme_blocks() -> list[tuple[str, str]]:
    """(first line naming dslgraph, block) of each Python block of the README: a list, as two blocks may
    open with the same ``import dslgraph``."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [(next(line for line in block.splitlines() if "dslgraph" in line), block) for block in blocks]


def test_readme_dataset_snippet_runs_as_written(readme_blocks, tmp_path, monkeypatch):
    # it read `val_edge_label_index` of a dataset made without a validation split: an AttributeError
    (block,) = [block for first, block in readme_blocks if "Gowalla(" in first]
    raw = tmp_path / "data" / "gowalla" / "raw"  # Gowalla's own format, small
    raw.mkdir(parents=True)
    (raw / "train.txt").write_text(
        "".join(f"{u} " + " ".join(str((u + i) % 30) for i in range(8)) + "\n" for u in range(20))
    )
    (raw / "test.txt").write_text("".join(f"{u} {(u + 8) % 30}\n" for u in range(20)))
    monkeypatch.chdir(tmp_path)
    scope = {"dslgraph": dslgraph}
    exec(block, scope)
    assert (
        scope["adj"].layout == torch.sparse_csr
        and scope["data"]["user", "to", "item"].val_edge_label_index.size(1) > 0
    )


def test_readme_load_run_snippet_runs_as_written(readme_blocks, tmp_path, monkeypatch):
    (block,) = [block for first, block in readme_blocks if "load_run" in block]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "home"))
    train = ["train", "--epochs", "1", "--embedding-dim", "8", "--sparsity", "0.8", "--no-progress"]
    assert main([*train, "--device", "cpu", "--output", "runs/sparse"]) == 0  # the README's run folder
    scope: dict = {}
    exec(block, scope)
    assert scope["top"].shape == (3, 10)


def test_cli_tells_its_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"dslgraph {dslgraph.__version__}\n"


def test_python_m_dslgraph_runs_the_command_line(monkeypatch, capsys):
    import runpy

    monkeypatch.setattr(sys, "argv", ["dslgraph", "--version"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("dslgraph", run_name="__main__")
    assert exit_.value.code == 0 and capsys.readouterr().out == f"dslgraph {dslgraph.__version__}\n"


def test_dir_of_the_package_lists_the_names_it_loads_at_first_use():
    """Tab completion (dir) of a plain `import dslgraph` offers its subpackages and load_run."""
    assert {"__version__", "data", "load_run", "metrics", "nn", "sparse", "train"} <= set(dir(dslgraph))


def test_what_load_run_returns_is_exported_beside_it():
    """dslgraph.load_run returned a dslgraph.cli.LoadedRun that the package did not export: not for
    isinstance, help() or docs/api.md (which named it in load_run's signature)."""
    assert "LoadedRun" in dslgraph.__all__ and "LoadedRun" in dir(dslgraph)
    assert dslgraph.LoadedRun is dslgraph.cli.LoadedRun
    assert "model (torch.nn.Module)" in dslgraph.LoadedRun.__doc__  # its fields, in help()
    assert "### `LoadedRun`" in (ROOT / "docs" / "api.md").read_text()
