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


def write_atomically(
    path: str | os.PathLike, parts: list[bytes], *, follow_symlinks: bool = True
) -> None:
    """Write `parts` to a temporary file beside `path`, flush it to disk, then rename
    it over `path`: readers see the old file or the new one, never a partial one.

    A symbolic link at `path` is followed (its target is written, the link kept),
    unless `follow_symlinks=False`, which replaces the link itself with the new file
    (for the files a `DurableLearner` owns: a link planted there is never followed).
    The temporary file is created new (`O_EXCL`, `O_NOFOLLOW`): never someone else's
    file, never through a link. The new file gets the mode `open()` would give it: the
    umask applied to 0o666, or the mode of the file it replaces, which must be
    writable. A temporary file of a save to this path whose process no longer runs
    (it was killed) is removed."""
    if follow_symlinks:
        path = os.path.realpath(path)
    else:
        path = os.path.join(os.path.realpath(os.path.dirname(path) or "."), os.path.basename(path))
    directory, base = os.path.split(path)
    try:
        info = os.stat(path, follow_symlinks=follow_symlinks)
        mode = None if stat.S_ISLNK(info.st_mode) else stat.S_IMODE(info.st_mode)
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
    # 0o666: the kernel applies the umask, as open() does.
    fd = open_new(temporary)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        write_all(fd, b"".join(parts))
        os.fsync(fd)
    except BaseException:
        close_quietly(fd)
        unlink_quietly(temporary)
        raise
    try:
        os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        unlink_quietly(temporary)
        raise
    # The rename itself is durable only once the directory is flushed (POSIX).
    fsync_directory(directory)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # not on Windows, which has no such links to plant


def open_no_link(path: str, flags: int, mode: int = 0o666) -> int:
    """`os.open(path, flags | O_NOFOLLOW)`: a symbolic link planted at `path` is
    refused with a clear error instead of being followed.

    **Raises:** `OSError` (`ELOOP`) naming `path` when it is a symbolic link."""
    try:
        return os.open(path, flags | _NOFOLLOW | getattr(os, "O_BINARY", 0), mode)
    except OSError as error:
        if error.errno == errno.ELOOP and os.path.islink(path):
            raise OSError(
                errno.ELOOP, f"{path!r} is a symbolic link: refusing to follow it"
            ) from error
        raise


def open_new(path: str) -> int:
    """A new file at `path`, open for writing: `O_CREAT | O_EXCL | O_NOFOLLOW`, so
    that nothing already there (a stale file, a planted link) is written through."""
    return open_no_link(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (a regular file takes it in one call; a short
    write continues)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def close_quietly(fd: int) -> None:
    """Close `fd` on a path that is already failing: the first error is the one to
    report (and on POSIX the descriptor is released even when `close` fails)."""
    with contextlib.suppress(OSError):
        os.close(fd)


def unlink_quietly(path: str) -> None:
    """Remove a temporary file on a path that is already failing (a leftover one is
    harmless: the next save removes it once this process has ended)."""
    with contextlib.suppress(OSError):
        os.unlink(path)


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
