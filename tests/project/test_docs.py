"""The documentation site: `mkdocs build --strict` passes, every public name appears in
the docs, and every notebook is a page."""

import importlib
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

# Modules whose every public name (`__all__`) must appear somewhere in docs/*.md, so
# that a new public name cannot ship undocumented.
DOCUMENTED_MODULES = [
    "alberta_eqx",
    "alberta_eqx.experiments",
    "alberta_eqx.optax",
    "alberta_eqx.replications",
    "alberta_eqx.streams",
    "alberta_eqx.sweeps",
]


def _docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.md")))


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None,
    reason="mkdocs is not installed (pip install -e '.[docs]')",
)
@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    process = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, (
        f"mkdocs build --strict failed:\n{process.stdout}\n{process.stderr}"
    )
    assert (site / "index.html").is_file()
    # the notebooks render as pages
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert (site / "notebooks" / notebook.stem / "index.html").is_file(), notebook.name


@pytest.mark.parametrize("module", DOCUMENTED_MODULES)
def test_every_public_name_is_documented(module):
    text = _docs_text()
    names = importlib.import_module(module).__all__
    missing = [n for n in names if not re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text)]
    assert not missing, f"{module}.__all__ names not mentioned in docs/*.md: {missing}"


def test_every_notebook_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [
        p.name
        for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
        if f"notebooks/{p.name}" not in config
    ]
    assert not missing, f"notebooks missing from mkdocs.yml's nav: {missing}"


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme[readme.index("## Quick start") :]
    block = quick_start[quick_start.index("```bash\n") + 8 :]
    commands = block[: block.index("```")].strip().splitlines()
    assert len(commands) == 2, "the quick start is two commands"
    return commands[1]


def test_ci_runs_the_readmes_test_command_verbatim():
    command = _readme_test_command()
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert script[-1] == command
    # the habits CI enforces: lint, format, types, tests
    for check in ("ruff check .", "ruff format --check .", "mypy", "pytest"):
        assert check in command


def test_the_package_ships_its_type_marker_licence_and_citation():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert (ROOT / "alberta_eqx" / "py.typed").is_file()
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["alberta_eqx"]
    assert config["project"]["license"]["text"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")[:200]
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert f"version: {config['project']['version']}" in citation
    assert "## Unreleased" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
