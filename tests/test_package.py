import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

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
