"""Checkpoints: a learner, and for a run in progress its stream state and step, in a file.

A checkpoint file is

    MAGIC | header length (8 bytes, little-endian) | header SHA-256 | header (JSON) | payload

where MAGIC names the format version (`alberta_eqx checkpoint 2` and a newline), the
payload is `eqx.tree_serialise_leaves` of `(learner, stream_state)` and the header
describes it: the format and library versions, the step, and for the learner
and the stream state their structure (the class at every node, the static fields,
every leaf's path, shape and dtype, and the value of every scalar leaf, among them
the hyperparameters), with the payload's length and SHA-256. Loading compares that
description with the templates it is given before reading a single leaf, so a
checkpoint of another optimizer or feature count, a truncated or corrupted file, or
one from a newer format is refused with a `CheckpointError` naming what differs:
nothing is half-loaded.

Typed PRNG keys (`jax.random.key`) cannot be written as arrays: they are stored as
their `jax.random.key_data` and rewrapped, with the implementation recorded in the
header, on loading.

Saving is atomic: the file is written beside its destination under a temporary
name, flushed to disk and renamed over it, so a crash mid-save leaves the previous
checkpoint in place. A symbolic link is followed (its target is replaced, the link
kept) unless `follow_symlinks=False`; the temporary file is created new, never
through a link (`O_EXCL`, `O_NOFOLLOW`); a read-only destination is refused; the new
file's mode is the one `open()` would give it (the umask applied to 0o666, or the
replaced file's mode); temporary files left behind by a killed save are removed by
the next save to that path.
"""

# One concept per module: `_format` (the file's bytes: magic line, header, payload,
# and their checks), `_structure` (a pytree's description in the header, and what
# differs between two), `_checkpoint` (saving and loading) and `files` (atomic writes,
# which `alberta_eqx.online` uses too).
from alberta_eqx.checkpoint._checkpoint import (
    Checkpoint,
    load_checkpoint,
    read_checkpoint_header,
    save_checkpoint,
)
from alberta_eqx.checkpoint._format import FORMAT_VERSION, CheckpointError

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "load_checkpoint",
    "read_checkpoint_header",
    "save_checkpoint",
]
