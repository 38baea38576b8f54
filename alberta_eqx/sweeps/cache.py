"""JAX's persistent compilation cache for the command line: compile once per machine.

The first `alberta-eqx` invocation compiles its programs and writes them to the
cache; later invocations with the same programs (the same learner, stream, step count
and options, on the same JAX and hardware) load them instead of compiling again.
"""

import os

import jax


def default_cache_dir() -> str:
    """`$ALBERTA_EQX_CACHE_DIR`, else `$XDG_CACHE_HOME/alberta_eqx/jax` (by default
    `~/.cache/alberta_eqx/jax`)."""
    if os.environ.get("ALBERTA_EQX_CACHE_DIR"):
        return os.environ["ALBERTA_EQX_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "alberta_eqx", "jax")


def enable_compilation_cache(path: str | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache in `path` (default
    `default_cache_dir()`) for every program that takes 0.1 s or more to compile.
    Leaves an existing `jax_compilation_cache_dir` (set by the user, or through
    `JAX_COMPILATION_CACHE_DIR`) as it is.

    **Arguments:**

    - `path`: the cache folder, created if needed.

    **Returns:** the cache folder in use, or None where it cannot be created (the
    run then compiles as usual).
    """
    # JAX's config options are dynamic attributes, which its annotations do not declare
    # (`Config._HAS_DYNAMIC_ATTRIBUTES`).
    existing = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
    if existing:
        return existing
    path = default_cache_dir() if path is None else os.fspath(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    # JAX's defaults cache only programs that take a second or more to compile; the
    # command line's take 0.1-3 s each, and together most of a short run's time.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    return path
