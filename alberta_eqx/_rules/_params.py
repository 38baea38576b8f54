"""What every rule module shares: the parameters' type."""

from jaxtyping import Array, PyTree

Params = PyTree[Array]
