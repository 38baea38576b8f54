"""Every notebook runs top to bottom, at small sizes and typed.

Each notebook opens with the science; its sizes sit in one cell tagged `parameters`
(papermill's convention). The test injects a cell after it, as papermill does, that
sets smaller sizes and turns on jaxtyping's IPython extension with beartype, so that
every annotated shape and dtype is checked while the notebook runs. The notebooks
run in one kernel, each after the namespace is emptied.
"""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))

# The test run's sizes, per notebook: a few seconds each.
SMALL = {
    "quickstart": {"steps": 3_000},
    "optax_mlp": {"steps": 2_000, "seeds": 2},
    "sutton1992": {"seeds": 3, "exp2_steps": 50_000, "exp2_seeds": 2},
    "td_random_walk": {"steps": 10_000, "episodes": 20, "walk_seeds": 4},
    "continual_backprop": {
        "steps": 10_000,
        "seeds": 3,
        "bin_size": 1_000,
        "flip_interval": 500,
    },
}
TYPED = "%load_ext jaxtyping\n%jaxtyping.typechecker beartype.beartype\n"


def _parameters_cell(notebook) -> int:
    tagged = [
        i
        for i, cell in enumerate(notebook.cells)
        if "parameters" in cell.get("metadata", {}).get("tags", [])
    ]
    assert len(tagged) == 1, "a notebook has one cell tagged 'parameters'"
    return tagged[0]


def _with_small_sizes(path: pathlib.Path):
    """The notebook with the test run's sizes and runtime type checks injected after
    its parameters cell."""
    notebook = nbformat.read(path, as_version=4)
    index = _parameters_cell(notebook)
    overrides = SMALL[path.stem]
    source = notebook.cells[index].source
    for name in overrides:
        assert f"{name} = " in source, f"{path.name}'s parameters cell sets no {name}"
    injected = TYPED + "".join(f"{k} = {v!r}\n" for k, v in overrides.items())
    cell = nbformat.v4.new_code_cell(injected, metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(index + 1, cell)
    return notebook


@pytest.fixture(scope="module")
def executed():
    """Every notebook run top to bottom in one kernel, one after another, each after
    `%reset -f` (which empties the namespace: a notebook sees nothing the one before
    it defined, and must import what it uses). One start of Python and JAX for all
    five saves 2-3 s of CPU each. Errors are recorded in the cells' outputs, not
    raised, so that each notebook's test reports its own: the executed cells by
    notebook name."""
    combined = nbformat.v4.new_notebook()
    spans = {}
    for path in NOTEBOOKS:
        start = len(combined.cells)
        combined.cells += [nbformat.v4.new_code_cell("%reset -f")]
        combined.cells += _with_small_sizes(path).cells
        spans[path.name] = (start, len(combined.cells))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MPLBACKEND", "Agg")
        NotebookClient(
            combined,
            timeout=600,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(NOTEBOOKS[0].parent)}},
        ).execute()
    return {name: combined.cells[start:end] for name, (start, end) in spans.items()}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, executed):
    cells = executed[path.name]
    outputs = [o for c in cells if c.cell_type == "code" for o in c.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    assert [o for o in outputs if o.output_type != "error"], "the notebook shows results"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_open_with_the_science(path):
    """The first cell explains the experiment; no test-only setup precedes it; the
    parameters cell holds sizes only."""
    notebook = nbformat.read(path, as_version=4)
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[0].source.startswith("# ")
    parameters = notebook.cells[_parameters_cell(notebook)].source
    assert "%" not in parameters and "import" not in parameters
    assert path.stem in SMALL


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {
        "quickstart.ipynb",
        "optax_mlp.ipynb",
        "sutton1992.ipynb",
        "td_random_walk.ipynb",
    }
