import os
import subprocess
import sys
from pathlib import Path


def test_import_dslgraph_is_enough_for_its_subpackages():
    # README: `data = dslgraph.data.Gowalla(root="data")[0]` after a plain `import dslgraph`, as with PyG
    code = "import dslgraph; print(dslgraph.data.LastFM.__name__, dslgraph.nn.LightGCN.__name__)"
    root = str(Path(__file__).resolve().parents[1])
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["LastFM", "LightGCN"]
