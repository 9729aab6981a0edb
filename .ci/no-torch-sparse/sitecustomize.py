# On PYTHONPATH, makes torch-sparse and torch-scatter unimportable, as on the GPU machine that lacks them.
import sys

sys.modules["torch_sparse"] = None
sys.modules["torch_scatter"] = None
