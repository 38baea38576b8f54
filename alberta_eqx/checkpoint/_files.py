"""Files written atomically: beside their destination under a temporary name, flushed
to disk, renamed over it; links followed, read-only files refused, the umask respected,
and the temporary files of killed saves removed."""

import contextlib
import errno
import os
import re
import secrets
import stat

_TEMPORARY = ".ckpt-tmp"  # the suffix of a save in progress: .{name}.{pid}.{token}.ckpt-tmp


def write_atomically(path: str | os.PathLike, parts: list[bytes]) -> None:
    """Write `parts` to a temporary file beside `path`, flush it to disk, then rename
    it over `path`: readers see the old file or the new one, never a partial one.

    A symbolic link at `path` is followed (its target is written, the link kept). The
    new file gets the mode `open()` would give it: the umask applied to 0o666, or the
    mode of the file it replaces, which must be writable. A temporary file of a save
    to this path whose process no longer runs (it was killed) is removed."""
    path = os.path.realpath(path)
    directory, base = os.path.split(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    if mode is not None and (mode & 0o222 == 0 or not os.access(path, os.W_OK)):
        raise PermissionError(
            errno.EACCES, f"{path!r} is read-only: refusing to replace it (chmod u+w it first)"
        )
    _remove_stale_temporaries(directory, base)
    temporary = os.path.join(
        directory, f".{base}.{os.getpid()}.{secrets.token_hex(4)}{_TEMPORARY}"
    )
    # O_EXCL: never someone else's file; 0o666: the kernel applies the umask, as open() does.
    fd = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
    )
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(part)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    # The rename itself is durable only once the directory is flushed (POSIX).
    fsync_directory(directory)


def fsync_directory(directory: str) -> None:
    """Flush a directory's entries (a rename or a new file in it) to disk, where the
    platform allows it (POSIX)."""
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _remove_stale_temporaries(directory: str, base: str) -> None:
    """Remove `.{base}.{pid}.{token}.ckpt-tmp` files whose process `pid` is gone (a
    save killed mid-write). A live process's temporary is its save in progress."""
    pattern = re.compile(re.escape(f".{base}.") + r"(\d+)\.[0-9a-f]{8}" + re.escape(_TEMPORARY))
    for entry in os.scandir(directory):
        match = pattern.fullmatch(entry.name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(match.group(1)), 0)
            continue  # that process is alive
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue  # alive, but another user's; or no such pid at all
        with contextlib.suppress(FileNotFoundError):  # another save removed it first
            os.unlink(entry.path)
