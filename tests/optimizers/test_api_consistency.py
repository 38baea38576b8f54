"""Every rule takes the same parameters, in the same order, with the same defaults, in its
module form (for the learners) and its optax form; past the first they are keyword-only,
so that a call written for one form cannot silently swap two hyperparameters."""

import ast
import importlib
import inspect
import pathlib

import pytest

import alberta_eqx as ae
import alberta_eqx.optax as aeo

# (module form, optax form, parameters of the module form that the optax form lacks)
PAIRS = [
    (ae.LMS, aeo.lms, ()),
    (ae.IDBD, aeo.idbd, ()),
    (ae.Autostep, aeo.autostep, ()),
    (ae.ObGD, aeo.obgd, ()),
    (ae.AdaptiveObGD, aeo.adaptive_obgd, ()),
    # The bound wraps a rule as a module; as a transformation it follows one in a chain.
    (ae.ObGDBounding, aeo.obgd_bound, ("optimizer",)),
    # A TD learner takes the same modules (TD(lambda), TD-IDBD and AutoTDIDBD are
    # LMS, IDBD and Autostep given the TD error's meta-gradient): no TD forms.
]


def _parameters(f, skip=()):
    parameters = list(inspect.signature(f).parameters.values())
    if parameters and parameters[0].name == "self":
        parameters = parameters[1:]
    return [(p.name, p.default) for p in parameters if p.name not in skip]


@pytest.mark.parametrize(
    ("module", "transformation", "extra"), PAIRS, ids=[m.__name__ for m, _, _ in PAIRS]
)
def test_module_and_optax_forms_agree(module, transformation, extra):
    assert _parameters(module.__init__, extra) == _parameters(transformation)


@pytest.mark.parametrize(
    "f",
    [f for pair in PAIRS for f in pair[:2]] + [aeo.trace_sgd, aeo.agc],
    ids=lambda f: f.__name__,
)
def test_keyword_only_past_the_first(f):
    parameters = list(inspect.signature(f).parameters.values())
    if parameters[0].name == "self":
        parameters = parameters[1:]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:]), [
        (p.name, p.kind) for p in parameters
    ]


def test_swapped_positional_call_is_refused():
    # 0.x wrote `idbd(meta_step_size, initial_step_size)` and `IDBD(initial, meta)`:
    # a two-positional call is now an error instead of a silent swap.
    with pytest.raises(TypeError):
        aeo.idbd(0.05, 0.01)  # type: ignore[misc]
    with pytest.raises(TypeError):
        ae.IDBD(0.05, 0.01)  # type: ignore[misc]


# --- Package boundaries (issue 23, item 9) ---------------------------------------------
# A package's public surface is its `__all__`: a public name a package's `__init__`
# imports from its own modules is in that `__all__` (or the `__init__` should not import
# it), and the top level takes each name from a package that lists it.

_ROOT = pathlib.Path(ae.__file__).parent
_PACKAGES = sorted(
    ".".join(("alberta_eqx", *init.parent.relative_to(_ROOT).parts))
    for init in _ROOT.rglob("__init__.py")
)


def _imports(package: str) -> list[tuple[str, str]]:
    """`(module, name)` for every `from alberta_eqx... import name` in the package's
    `__init__` (relative imports resolved against the package)."""
    module = importlib.import_module(package)
    tree = ast.parse(pathlib.Path(module.__file__).read_text())
    found = []
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        if source == "alberta_eqx" or source.startswith("alberta_eqx."):
            found += [(source, alias.asname or alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("package", _PACKAGES)
def test_public_names_imported_into_a_package_are_in_its_all(package):
    module = importlib.import_module(package)
    assert isinstance(getattr(module, "__all__", None), list), f"{package} has no __all__"
    own = [
        name
        for source, name in _imports(package)
        if (source == package or source.startswith(package + ".")) and not name.startswith("_")
    ]
    missing = sorted(set(own) - set(module.__all__))
    assert not missing, f"{package} imports {missing} from its modules but its __all__ omits them"
    absent = [name for name in module.__all__ if not hasattr(module, name)]
    assert not absent, f"{package}.__all__ lists {absent}, which it does not define"


def test_top_level_takes_each_name_from_a_package_that_exports_it():
    wrong = []
    for source, name in _imports("alberta_eqx"):
        exported = getattr(importlib.import_module(source), "__all__", None)
        private = any(part.startswith("_") for part in source.split("."))
        if private or (exported is not None and name not in exported):
            wrong.append(f"{name} from {source}")
    assert not wrong, f"the top level imports names their package does not export: {wrong}"


def test_no_private_name_crosses_a_package_boundary():
    """A module imports another package's names from that package's public surface:
    no private module path (`alberta_eqx.streams._base`) and no private name from
    outside its own package. `_checks` and `_rules`, the shared bottom layer, are
    private to the library, not to one package."""
    shared = {"_checks", "_rules"}
    crossings = []
    for path in sorted(_ROOT.rglob("*.py")):
        parts = path.relative_to(_ROOT).with_suffix("").parts
        here = parts[0] if len(parts) > 1 else None  # a top-level module is its own unit
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            module = node.module.split(".")
            if module[0] != "alberta_eqx" or len(module) < 2 or module[1] in shared:
                continue
            if module[1] == here:
                continue
            names = [a.name for a in node.names if a.name.startswith("_") and a.name not in shared]
            if any(part.startswith("_") for part in module[2:]) or names:
                crossings.append(f"{path.relative_to(_ROOT)}:{node.lineno} {node.module} {names}")
    assert not crossings, crossings
