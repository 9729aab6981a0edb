"""Reading the ``metrics.json`` of a ``dslgraph train`` run, apart from ``common`` as it loads no torch: the
budget of ``timed_runs.py`` counts from its start, and torch's imports would go uncounted."""

from __future__ import annotations

import json
from pathlib import Path


def read_summary(path: Path, required: tuple[str, ...] = ()) -> dict:
    """The ``metrics.json`` of a ``dslgraph train`` run at ``path``; one that is no such file (a copy cut
    short, another file), or lacks a key of ``required``, stops the script naming it, where json's error
    (or a bare ``KeyError``) named no file."""
    try:
        summary = json.loads(path.read_text())
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        summary = None
    if not isinstance(summary, dict):
        raise SystemExit(
            f"{path}: not the metrics.json that dslgraph train writes (a copy cut short?): copy it again, or "
            f"write it again from the run's last.pt with dslgraph train --output {path.parent} --resume"
        )
    missing = [key for key in required if key not in summary]
    if missing:
        raise SystemExit(
            f"{path}: lacks {', '.join(missing)}, which the metrics.json that dslgraph train writes holds (a "
            f"file of another program or edited by hand?): write it again from the run's last.pt with "
            f"dslgraph train --output {path.parent} --resume"
        )
    return summary
