"""Renaming a finished file over its target, on every platform.

Here, importing nothing of dslgraph, torch or PyG, so that every write-then-rename takes it from one place:
``benchmarks/timed_runs.py`` renames its timing file before it may spend seconds loading torch.
"""

from __future__ import annotations

import os
import time

#: Seconds waited before each retry of a rename that Windows refused (about 3 s in all): an antivirus scan,
#: a search indexer, a backup client or a reader such as ``dslgraph eval`` holds the target open for moments.
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


def replace_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """``os.replace(src, dst)``: ``dst`` is the old file or the new one, whole, never a mix. Windows refuses
    the rename with a :class:`PermissionError` while another process holds ``dst`` open (without
    ``FILE_SHARE_DELETE``, as most do), which stopped a run at its next checkpoint: there it is retried
    after each of :data:`RETRY_DELAYS`, the last refusal raised (naming ``src`` and ``dst``). Elsewhere such
    a refusal (a folder that cannot be written to) lasts: raised at once."""
    for delay in RETRY_DELAYS if os.name == "nt" else ():
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            time.sleep(delay)
    os.replace(src, dst)
