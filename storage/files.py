"""Writing output files safely: a new regular file, complete or not at all, never anything else replaced.

Exports, reports and standalone pages are written to a temporary file in the same folder and
renamed over the target only when complete, so a failure leaves no half file. The target must
be absent or a regular file: a symlink, FIFO, device node or folder at that path is refused
(renaming over `/dev/full` as root would replace the device). Every OS error becomes a
`FileWriteError` whose one line names the path.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Callable, TypeVar

T = TypeVar("T")


class FileWriteError(OSError):
    """An output file that cannot be written; the message names the path."""

    def __str__(self) -> str:  # OSError's str() would add errno noise
        return self.args[0] if self.args else "cannot write the file"


def check_target(path: str | os.PathLike[str]) -> Path:
    """The output path, if a new regular file may be written there; else FileWriteError."""
    raw = os.fspath(path)
    if not raw.strip():
        raise FileWriteError("output path is empty; give a file name")
    if "\x00" in raw:
        raise FileWriteError("output path contains a NUL character")
    p = Path(raw).expanduser()
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise FileWriteError(f"{p}: cannot check the output path ({e.strerror or e})") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = ("a symbolic link" if stat.S_ISLNK(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode)
                else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise FileWriteError(f"{p}: is {kind}; refusing to replace it (give a new file name)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise FileWriteError(f"{p}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise FileWriteError(f"{p}: folder {parent} is not writable")
    return p


def write_new_file(path: str | os.PathLike[str], write: Callable[[IO[str]], T], *,
                   encoding: str = "utf-8") -> tuple[T, Path]:
    """Call `write(handle)` on a temporary file next to `path`, then rename it into place.

    Returns what `write` returned and the final path. Nothing is left behind on failure.
    """
    p = check_target(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part")
    except OSError as e:
        raise FileWriteError(f"{p}: cannot create a file in {p.parent} ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as fh:
            result = write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; an export is an ordinary file
        check_target(p)  # still absent or a regular file right before the rename
        os.replace(tmp, p)
    except FileWriteError:
        _unlink(tmp)
        raise
    except OSError as e:
        _unlink(tmp)
        raise FileWriteError(f"{p}: cannot write ({e.strerror or e})") from None
    except BaseException:
        _unlink(tmp)
        raise
    return result, p


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass

