"""A pytree's structure as a checkpoint's header records it (`describe`): every inner
node's class and static fields, every leaf's path, shape and dtype, and the value of
every scalar leaf; what differs between two such descriptions (`differences`); and
typed PRNG keys unwrapped to their key data for serialisation and wrapped again."""

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jaxtyping import PyTree


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_LEAF_KEYS = ({"shape", "dtype"}, {"shape", "dtype", "value"}, {"shape", "dtype", "key_impl"})


def _is_description(described: Any) -> bool:
    """Whether `described` has the form `_describe` writes."""
    if not isinstance(described, dict) or described.keys() != {"nodes", "leaves"}:
        return False
    nodes, leaves = described["nodes"], described["leaves"]
    if not isinstance(nodes, dict) or not isinstance(leaves, dict):
        return False
    for node in nodes.values():
        if not (
            isinstance(node, dict)
            and isinstance(node.get("type"), str)
            and node.keys() <= {"type", "static"}
            and isinstance(node.get("static", {}), dict)
        ):
            return False
    for leaf in leaves.values():
        if not isinstance(leaf, dict):
            return False
        if "shape" in leaf:
            shape = leaf["shape"]
            if not (
                leaf.keys() in _LEAF_KEYS
                and isinstance(shape, list)
                and all(_is_int(n) and n >= 0 for n in shape)
                and isinstance(leaf["dtype"], str)
                and isinstance(leaf.get("key_impl", ""), str)
            ):
                return False
        elif not (isinstance(leaf.get("type"), str) and leaf.keys() <= {"type", "value"}):
            return False
    return True


def _is_key(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _unwrap_keys(tree: PyTree) -> PyTree:
    """Typed PRNG keys replaced by their raw `uint32` key data, which serialises."""
    return jax.tree.map(lambda leaf: jax.random.key_data(leaf) if _is_key(leaf) else leaf, tree)


def _rewrap_keys(tree: PyTree, like: PyTree) -> PyTree:
    """Undo `_unwrap_keys`: wrap the key data where `like` has typed keys (whose
    implementation `_differences` has checked is the saved one)."""
    return jax.tree.map(
        lambda leaf, template: (
            jax.random.wrap_key_data(leaf, impl=jax.random.key_impl(template))
            if _is_key(template)
            else leaf
        ),
        tree,
        like,
    )


def _describe_leaf(leaf: Any) -> dict:
    if _is_key(leaf):
        return {
            "shape": list(leaf.shape),
            "dtype": "key",
            "key_impl": str(jax.random.key_impl(leaf)),
        }
    if isinstance(leaf, jax.Array | np.ndarray | np.generic):
        described: dict = {"shape": list(np.shape(leaf)), "dtype": str(leaf.dtype)}
        if np.ndim(leaf) == 0 and np.issubdtype(leaf.dtype, np.number):
            described["value"] = _json_number(np.asarray(leaf).item())
        return described
    if isinstance(leaf, bool | int | float):
        return {"type": type(leaf).__name__, "value": _json_number(leaf)}
    # Not serialised (a function in an `eqx.nn.MLP`, say): taken from the template.
    return {"type": type(leaf).__name__}


def _json_number(value: Any) -> Any:
    """JSON has no NaN or infinity: those are written as "nan", "inf", "-inf"."""
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


def _static_value(value: Any) -> Any:
    """A static field as JSON: plain values as they are, anything else by type name
    (a function's repr holds its address, which differs from process to process)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list) and all(
        isinstance(v, bool | int | float | str) for v in value
    ):
        return list(value)
    return f"<{type(value).__qualname__}>"


def _describe(tree: PyTree) -> dict:
    """The structure of `tree`: every inner node's class (and a module's static
    fields), and every leaf's shape and dtype, all keyed by path."""
    nodes: dict[str, dict] = {}
    leaves: dict[str, dict] = {}

    def walk(node: Any, path: tuple) -> None:
        name = jax.tree_util.keystr(path)
        # One level, every child a leaf. (`flatten_one_level_with_keys` names a
        # NamedTuple's children all after its first field in JAX 0.10.)
        children, treedef = jax.tree_util.tree_flatten_with_path(
            node, is_leaf=lambda child: child is not node
        )
        if jax.tree_util.treedef_is_leaf(treedef) and children == [((), node)]:
            leaves[name] = _describe_leaf(node)
            return
        described: dict = {"type": f"{type(node).__module__}.{type(node).__qualname__}"}
        if isinstance(node, eqx.Module):
            described["static"] = {
                field.name: _static_value(getattr(node, field.name, None))
                for field in dataclasses.fields(node)
                if field.metadata.get("static", False)
            }
        nodes[name] = described
        for (key,), child in children:
            walk(child, (*path, key))

    walk(tree, ())
    return {"nodes": nodes, "leaves": leaves}


def _differences(what: str, saved: dict, like: dict) -> list[str]:
    """What differs between the saved description and the template's, one line each:
    nodes first, by path, and nothing below a node whose class differs (that
    difference explains the rest)."""
    differences: list[str] = []
    replaced: list[str] = []
    for kind in ("nodes", "leaves"):
        saved_items, like_items = saved[kind], like[kind]
        for path in sorted(saved_items.keys() | like_items.keys()):
            if any(path.startswith(node) and path != node for node in replaced):
                continue
            where = f"{what}{path}"
            a, b = saved_items.get(path), like_items.get(path)
            if a is None or b is None:
                present = "the file" if b is None else f"like_{what}"
                differences.append(f"{where} is only in {present}")
                continue
            if a.get("type") != b.get("type") and kind == "nodes":
                replaced.append(path)
            a, b = _comparable(a), _comparable(b)
            for field in sorted(a.keys() | b.keys()):
                if a.get(field) != b.get(field):
                    differences.append(
                        f"{where} {field}: {_show(a.get(field))} vs {_show(b.get(field))}"
                    )
                    if field == "type":
                        break
    return differences


def _comparable(described: dict) -> dict:
    """A description's fields to compare, with "type" first and a module's static
    fields one by one; scalar values are left out (they come from the file)."""
    fields = {k: v for k, v in described.items() if k not in ("value", "static")}
    fields.update({f"static {k}": v for k, v in described.get("static", {}).items()})
    return fields


def _show(value: Any) -> str:
    if isinstance(value, list):
        return f"({', '.join(map(str, value))}{',' if len(value) == 1 else ''})"
    return str(value)
