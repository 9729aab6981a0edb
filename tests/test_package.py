import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


# STYLE.md: data -> model -> train loop <-> DSL engine -> metrics. Models use the losses of dslgraph.train,
# nothing else of it; the sparse storage and the DSL engine know no model and no trainer; datasets hold
# no torch.nn modules. Each layer: (forbidden modules, exceptions among them).
LAYERS = {
    "dslgraph/nn": (("dslgraph.train", "dslgraph.cli", "dslgraph.config"), ("dslgraph.train.losses",)),
    "dslgraph/sparse": (
        ("dslgraph.nn", "dslgraph.train", "dslgraph.metrics", "dslgraph.cli", "dslgraph.config"),
        (),
    ),
    "dslgraph/data": (
        ("torch.nn", "dslgraph.nn", "dslgraph.sparse", "dslgraph.train", "dslgraph.metrics"),
        (),
    ),
    "dslgraph/metrics": (("dslgraph.nn", "dslgraph.train", "dslgraph.cli", "dslgraph.config"), ()),
}


def _within(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == module or name.startswith(f"{module}.") for module in modules)


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_modules_import_only_the_layers_below_them(layer):
    # UltraGCN wrote its neighbour cache with the trainer's save_checkpoint (dslgraph.train.checkpoint)
    forbidden, allowed = LAYERS[layer]
    found = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / layer).rglob("*.py")
        for name in _imports(path)
        if _within(name, forbidden) and not _within(name, allowed)
    )
    assert found == []
