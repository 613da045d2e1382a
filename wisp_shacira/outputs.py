"""Writing outputs: atomic files and folders, one set of permissions, one-line errors.

Every output of the package (``.shac`` files, PNGs, JSON reports, checkpoints, videos
and frame folders) is built under a temporary name beside its final path and moved
into place with ``os.replace``, so an interruption leaves the previous output or the
new one, never a partial file. Temporary names embed the writer's process id,
``.NAME.<pid>.<random>.tmp``, so that :func:`remove_stale_temporaries` can delete
those of processes that died (SIGKILL, power loss) and never touch a live writer's.

Outputs get the permissions of a file the user creates by hand: ``0o666 & ~umask``
for files, ``0o777 & ~umask`` for folders. An existing output that is read-only is
refused unless ``force`` is set; OS errors become a one-line :class:`OutputError`
naming the path and the reason.

This module imports only the standard library (no torch, no numpy).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from wisp_shacira.errors import OutputError

logger = logging.getLogger(__name__)

OLD_TEMPORARY_AGE_S = 600.0
"""Temporaries named by earlier versions (no process id) are removed after this age."""
PID_REUSE_MARGIN_S = 10.0
"""A live PID's temporary older than the process by this much was left by an earlier
process that had the same PID (containers restart with the same PIDs)."""

_WITH_PID = re.compile(r"^\..+\.(?P<pid>[0-9]+)\.[A-Za-z0-9_]+\.tmp$")
_WITHOUT_PID = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions of a new output file: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def folder_mode() -> int:
    """Permissions of a new output folder: ``0o777 & ~umask``."""
    return 0o777 & ~current_umask()


def is_read_only(path: str | os.PathLike) -> bool:
    """True when ``path`` exists and we may not write it: no user write bit (even for
    root, who ``os.access`` would let through) or ``os.access`` says no."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not mode & stat.S_IWUSR or not os.access(path, os.W_OK)


def _error(path: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OutputError(f"{path}: cannot write ({reason})")


def _refuse_read_only(target: Path, force: bool) -> None:
    if not force and is_read_only(target):
        raise OutputError(f"{target}: the existing output is read-only; "
                          f"use --force to replace it")


def _ensure_folder(folder: Path) -> Path:
    """Create ``folder`` (and parents) as needed; one-line error if that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputError(f"{folder}: cannot create the output folder "
                          f"(a file of that name exists)") from exc
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create the output folder "
                          f"({exc.strerror or exc})") from exc
    return folder


def _prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every OS or FS allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and ``os.replace``.

    Args:
        path: the output file; its folder is created if needed.
        data: the whole contents.
        force: replace an existing read-only output (else it is refused).
    Raises:
        OutputError: read-only existing output, unwritable folder, full disk, ...
    """
    target = Path(path)
    _refuse_read_only(target, force)
    folder = _ensure_folder(target.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_prefix(target), suffix=".tmp", dir=folder)
    except OSError as exc:
        raise _error(target, exc) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            os.chmod(tmp, file_mode())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _error(target, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(folder)


def existing_ancestor(folder: Path) -> Path:
    """The nearest existing folder at or above ``folder`` (an error if a file is there)."""
    probe = folder
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{folder}: cannot create the output folder ({probe} is a file)")
    return probe


def check_writable(path: str | os.PathLike, force: bool = False, create: bool = True) -> Path:
    """Check up front (before long work) that an output can be written at ``path``.

    Creates the parent folder if needed (``create``; else checks the nearest existing
    folder above it, creating nothing), creates and removes a probe file there, and
    refuses an existing read-only output unless ``force``.

    Raises:
        OutputError: the output could not be written.
    """
    target = Path(path)
    _refuse_read_only(target, force)
    folder = _ensure_folder(target.parent) if create else existing_ancestor(target.parent)
    try:
        fd, probe = tempfile.mkstemp(prefix=_prefix(target), suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _error(target, exc) from exc
    return target


def _make_removable(folder: Path) -> None:
    """Give the user every permission on the folders of a tree, so it can be deleted."""
    for root, dirs, _ in os.walk(folder):
        for name in [root] + [os.path.join(root, d) for d in dirs]:
            try:
                if not os.path.islink(name):
                    os.chmod(name, os.stat(name).st_mode | stat.S_IRWXU)
            except OSError:
                pass


def _remove_tree(path: Path) -> None:
    _make_removable(path)
    shutil.rmtree(path, ignore_errors=True)


def _apply_permissions(built: Path) -> None:
    if built.is_dir():
        os.chmod(built, folder_mode())
        for entry in os.scandir(built):
            if entry.is_file(follow_symlinks=False):
                os.chmod(entry.path, file_mode())
        return
    os.chmod(built, file_mode())
    with open(built, "rb") as handle:
        os.fsync(handle.fileno())


def _replace_folder(built: Path, target: Path) -> None:
    """Swap a built folder in for an existing one: old one aside, new one in, old removed."""
    aside = Path(tempfile.mkdtemp(prefix=_prefix(target), suffix=".tmp", dir=target.parent))
    os.replace(target, aside / target.name)
    try:
        os.replace(built, target)
    except OSError:
        os.replace(aside / target.name, target)
        raise
    finally:
        _remove_tree(aside)


def move_into_place(built: str | os.PathLike, target: str | os.PathLike,
                    force: bool = False) -> None:
    """Move a built temporary file or folder to ``target`` with the normal permissions.

    A folder replaces an existing folder as a whole (no stale files are left).

    Raises:
        OutputError: read-only existing output (without ``force``) or an OS error.
    """
    built, target = Path(built), Path(target)
    _refuse_read_only(target, force)
    try:
        _apply_permissions(built)
        if built.is_dir() and target.is_dir() and not target.is_symlink():
            _replace_folder(built, target)
        else:
            os.replace(built, target)
    except OSError as exc:
        raise _error(target, exc) from exc
    _fsync_folder(target.parent)


@contextmanager
def staged_output(target: str | os.PathLike, force: bool = False,
                  folder: bool = False) -> Iterator[Path]:
    """Build an output under a temporary name beside ``target``; move it into place.

    Yields the path to write: a new empty folder (``folder=True``), else a file path
    with ``target``'s name inside a private temporary folder (so tools that pick the
    format from the suffix, such as FFmpeg, see it). On success the output is moved
    into place by :func:`move_into_place`; on any error the temporary is removed.

    Raises:
        OutputError: read-only existing output (without ``force``) or an OS error,
            including one raised while the body writes.
    """
    target = Path(target)
    _refuse_read_only(target, force)
    parent = _ensure_folder(target.parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_prefix(target), suffix=".tmp", dir=parent))
    except OSError as exc:
        raise _error(target, exc) from exc
    try:
        built = tmp if folder else tmp / target.name
        try:
            yield built
        except OSError as exc:
            raise _error(target, exc) from exc
        move_into_place(built, target, force=force)
    finally:
        if os.path.lexists(tmp):
            _remove_tree(tmp)


def _process_start(pid: int) -> float | None:
    """Wall-clock start time of process ``pid`` (Linux ``/proc``), else None."""
    try:
        line = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        boot = next(r for r in Path("/proc/stat").read_text().splitlines()
                    if r.startswith("btime "))
        ticks = int(line[line.rindex(")") + 2:].split()[19])
        return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def writer_alive(pid: int, written_at: float) -> bool:
    """Whether the process that wrote a temporary at ``written_at`` (mtime) may still
    be writing it: ``pid`` is alive and started before the file was written."""
    if os.name == "nt":
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except (OverflowError, OSError):
        return False
    start = _process_start(pid)
    return start is None or written_at >= start - PID_REUSE_MARGIN_S


def _is_stale(entry: os.DirEntry, now: float) -> bool:
    with_pid, without_pid = _WITH_PID.match(entry.name), _WITHOUT_PID.match(entry.name)
    if not with_pid and not without_pid:
        return False
    try:
        mtime = entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return False
    if with_pid:
        return not writer_alive(int(with_pid["pid"]), mtime)
    return now - mtime > OLD_TEMPORARY_AGE_S


def _remove_entry(entry: os.DirEntry) -> bool:
    try:
        if entry.is_dir(follow_symlinks=False):
            _remove_tree(Path(entry.path))
        else:
            os.unlink(entry.path)
    except OSError as exc:
        logger.warning("cannot remove stale temporary %s (%s)", entry.path, exc.strerror)
        return False
    return not os.path.lexists(entry.path)


def remove_stale_temporaries(folder: str | os.PathLike, depth: int = 1) -> list[Path]:
    """Delete temporaries that interrupted writers left in ``folder``.

    Removed: ``.NAME.<pid>.<random>.tmp`` files and folders whose process is gone (or
    is a later process that reused the PID), and ``.NAME.<random>.tmp`` names of earlier
    versions older than :data:`OLD_TEMPORARY_AGE_S`. A live writer's temporary is kept.
    Subfolders (not hidden, not links) are scanned down to ``depth`` levels.

    Returns:
        the removed paths (a missing folder has none).
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if _is_stale(entry, now):
            if _remove_entry(entry):
                removed.append(Path(entry.path))
        elif depth > 0 and not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
            removed += remove_stale_temporaries(entry.path, depth - 1)
    if removed:
        logger.info("removed %d stale temporary file(s) from %s", len(removed), folder)
    return removed
