import errno
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

import dslgraph.files as files
from dslgraph.data.io import write_then_rename
from dslgraph.files import RETRY_DELAYS, replace_file


@pytest.fixture
def refused(monkeypatch):
    """``refused(name, times)``: ``os.replace`` as dslgraph's rename calls it on the system ``name``
    (``"nt"``, Windows), refusing the first ``times`` calls as Windows refuses a target another process
    holds open; returns the calls and the seconds slept."""

    def imitate(name: str, times: int) -> SimpleNamespace:
        seen = SimpleNamespace(calls=0, slept=[])

        def replace(src, dst):
            seen.calls += 1
            if seen.calls <= times:
                raise PermissionError(errno.EACCES, "Access is denied", os.fspath(src), None, os.fspath(dst))
            os.replace(src, dst)

        # the module's os only: pathlib builds a WindowsPath, which Linux cannot, where os.name is "nt"
        monkeypatch.setattr(files, "os", SimpleNamespace(name=name, replace=replace))
        monkeypatch.setattr(files.time, "sleep", seen.slept.append)
        return seen

    return imitate


def test_a_rename_windows_refuses_for_moments_is_retried(tmp_path, refused):
    """An antivirus scan or a reader holding the target open made Windows refuse the rename, which stopped
    a run at its next checkpoint."""
    (tmp_path / "new").write_text("new")
    (tmp_path / "last.pt").write_text("old")
    seen = refused("nt", times=2)
    replace_file(tmp_path / "new", tmp_path / "last.pt")
    assert (tmp_path / "last.pt").read_text() == "new" and not (tmp_path / "new").exists()
    assert seen.calls == 3 and seen.slept == list(RETRY_DELAYS[:2])


def test_a_rename_windows_keeps_refusing_fails_naming_both_files_and_keeps_the_target(tmp_path, refused):
    (tmp_path / "new").write_text("new")
    (tmp_path / "last.pt").write_text("old")
    seen = refused("nt", times=len(RETRY_DELAYS) + 1)
    with pytest.raises(PermissionError) as info:
        replace_file(tmp_path / "new", tmp_path / "last.pt")
    assert (info.value.filename, info.value.filename2) == (str(tmp_path / "new"), str(tmp_path / "last.pt"))
    assert (tmp_path / "last.pt").read_text() == "old"
    assert seen.calls == len(RETRY_DELAYS) + 1 and seen.slept == list(RETRY_DELAYS)


def test_a_refused_rename_is_not_retried_outside_windows(tmp_path, refused):
    # a folder that cannot be written to stays so: waiting 3 s would only delay the error
    (tmp_path / "new").write_text("new")
    seen = refused("posix", times=1)
    with pytest.raises(PermissionError):
        replace_file(tmp_path / "new", tmp_path / "last.pt")
    assert seen.calls == 1 and seen.slept == []


def test_a_rename_windows_refuses_for_another_reason_fails_at_once(tmp_path, refused):
    # a file that is not there stays so: only a target held open for moments is waited out
    seen = refused("nt", times=0)
    with pytest.raises(FileNotFoundError):
        replace_file(tmp_path / "gone", tmp_path / "last.pt")
    assert seen.calls == 1 and seen.slept == []


def test_write_then_rename_waits_out_a_target_held_open_on_windows(tmp_path, refused):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    refused("nt", times=3)
    write_then_rename(path, lambda tmp: tmp.write_text("new"))
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["metrics.json"]


def test_write_then_rename_refused_for_good_names_the_file_and_leaves_no_partial(tmp_path, refused):
    path = tmp_path / "last.pt"
    path.write_text("old")
    refused("nt", times=len(RETRY_DELAYS) + 1)
    with pytest.raises(PermissionError) as info:
        write_then_rename(path, lambda tmp: tmp.write_text("new"))
    assert info.value.filename == str(path)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["last.pt"]


def test_every_rename_of_a_written_file_goes_through_replace_file():
    """One place retries Windows' refusals: a write-then-rename of its own would not."""
    root = Path(__file__).resolve().parents[1]
    sources = [*root.joinpath("dslgraph").rglob("*.py"), *root.joinpath("benchmarks").glob("*.py")]
    renames = ("os.replace(", "os.rename(", "shutil.move(")
    bare = [
        str(path.relative_to(root))
        for path in sources
        if path.name != "files.py" and any(call in path.read_text(encoding="utf-8") for call in renames)
    ]
    assert bare == []
