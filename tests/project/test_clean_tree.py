"""The suite leaves the working tree as it found it: `conftest.py` compares the paths
`git status` reports before and after the run. Here its comparison, in a throwaway
repository."""

import shutil
import subprocess

import pytest

from tests.conftest import changed_paths


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_changed_paths_sees_new_modified_and_deleted_files(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "kept.txt").write_text("a")
    (tmp_path / "gone.txt").write_text("b")
    (tmp_path / ".gitignore").write_text("*.ignored\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x")
    assert changed_paths(tmp_path) == set()
    before = {"?? mine.py"}  # a developer's own edit, there before the run
    (tmp_path / "mine.py").write_text("")
    assert changed_paths(tmp_path) == before
    (tmp_path / "kept.txt").write_text("changed")
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "run.ckpt").write_bytes(b"")
    (tmp_path / "cache.ignored").write_text("")
    assert changed_paths(tmp_path) - before == {" M kept.txt", " D gone.txt", "?? new/run.ckpt"}


def test_outside_a_checkout_nothing_is_compared(tmp_path):
    assert changed_paths(tmp_path) is None
