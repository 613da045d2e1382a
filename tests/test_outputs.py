"""``wisp_shacira.outputs``: atomic writes, one set of permissions, read-only outputs,
unwritable destinations as one-line errors, and removal of stale temporaries."""
from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from wisp_shacira.datasets.video import check_video_output, save_video
from wisp_shacira.errors import OutputError, ShaciraError
from wisp_shacira.outputs import (OLD_TEMPORARY_AGE_S, check_writable, file_mode, folder_mode,
                                  is_read_only, move_into_place, remove_stale_temporaries,
                                  staged_output, write_atomic)
from wisp_shacira.tasks.common import prepare_output_dir


@pytest.fixture
def umask_027() -> Iterator[None]:
    """A umask other than the usual 022, so that permissions are really computed."""
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


def _clip(frames: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (frames, 8, 8, 3), dtype=np.uint8)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _one_line(exc: ShaciraError) -> str:
    message = str(exc)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_write_atomic_writes_replaces_and_leaves_no_temporary(tmp_path: Path, umask_027) -> None:
    target = tmp_path / "sub" / "out.bin"
    write_atomic(target, b"abc")
    write_atomic(target, b"defg")
    assert target.read_bytes() == b"defg"
    assert _mode(target) == 0o640 == file_mode()
    assert _temporaries(tmp_path) == []


def test_every_kind_of_output_gets_the_same_permissions(tmp_path: Path, umask_027,
                                                        random_image_shac) -> None:
    from wisp_shacira.cli.main import main

    shac = random_image_shac(tmp_path / "img.shac", 8, 8)
    assert main(["decode", str(shac), "-o", str(tmp_path / "img.png")]) == 0
    mp4 = save_video(_clip(), tmp_path / "clip.mp4")
    frames = save_video(_clip(), tmp_path / "frames")
    modes = {name: _mode(tmp_path / name) for name in ("img.shac", "img.png")}
    modes |= {"clip.mp4": _mode(mp4)}
    modes |= {p.name: _mode(p) for p in frames.iterdir()}
    assert set(modes.values()) == {0o640}, modes
    assert _mode(frames) == 0o750 == folder_mode()
    assert _temporaries(tmp_path) == []


def test_read_only_output_is_refused_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    target.chmod(0o444)
    assert is_read_only(target)
    for attempt in (lambda: write_atomic(target, b"new"), lambda: check_writable(target)):
        with pytest.raises(OutputError, match="read-only.*--force") as info:
            attempt()
        _one_line(info.value)
    assert target.read_bytes() == b"old"
    check_writable(target, force=True)
    write_atomic(target, b"new", force=True)
    assert target.read_bytes() == b"new" and _mode(target) == file_mode()


@pytest.mark.parametrize("name", ["clip.mp4", "frames"])
def test_read_only_video_output_is_refused_unless_forced(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    save_video(_clip(4), target)
    target.chmod(0o555 if target.is_dir() else 0o444)
    with pytest.raises(OutputError, match="read-only"):
        save_video(_clip(2), target)
    save_video(_clip(2), target, force=True)
    assert _mode(target) == (folder_mode() if target.is_dir() else file_mode())
    if target.is_dir():
        assert sorted(p.name for p in target.iterdir()) == ["frame_00000.png", "frame_00001.png"]
    assert _temporaries(tmp_path) == []


def _unwritable(tmp_path: Path) -> list[Path]:
    """Destinations that fail even for root: under /proc, or below a regular file."""
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"")
    return [Path("/proc/wisp_shacira_test.png"), Path("/proc/self/nothing/out.png"),
            blocker / "out.png", blocker / "sub" / "out.png"]


def test_unwritable_destinations_are_one_line_errors(tmp_path: Path) -> None:
    for path in _unwritable(tmp_path):
        for attempt in (lambda: write_atomic(path, b"x"), lambda: check_writable(path),
                        lambda: save_video(_clip(), path.with_suffix(".mp4")),
                        lambda: save_video(_clip(), path.with_suffix(""))):
            with pytest.raises(OutputError) as info:
                attempt()
            assert str(path.parent) in _one_line(info.value)


def test_os_errors_while_writing_become_one_line_errors(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match="No space left on device") as info:
        write_atomic(tmp_path / "out.shac", b"x" * 100)
    assert "out.shac" in _one_line(info.value)
    assert list(tmp_path.iterdir()) == []


def test_video_output_suffix_is_checked_up_front(tmp_path: Path) -> None:
    for bad in ("x.png", "x.JPG", "x.shac", "x.json"):
        with pytest.raises(OutputError, match="must end in .mp4"):
            check_video_output(tmp_path / bad)
    (tmp_path / "plain").write_bytes(b"")
    with pytest.raises(OutputError, match="existing file"):
        check_video_output(tmp_path / "plain")
    assert check_video_output(tmp_path / "v.mkv") == tmp_path / "v.mkv"
    assert check_video_output(tmp_path / "frames") == tmp_path / "frames"


def test_staged_output_failure_leaves_previous_output_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "frames"
    save_video(_clip(2), target)
    with pytest.raises(RuntimeError):
        with staged_output(target, folder=True) as tmp:
            (tmp / "partial.png").write_bytes(b"")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["frame_00000.png", "frame_00001.png"]
    assert _temporaries(tmp_path) == []
    built = tmp_path / "built.bin"
    built.write_bytes(b"b")
    built.chmod(0o600)
    move_into_place(built, tmp_path / "placed.bin")
    assert _mode(tmp_path / "placed.bin") == file_mode()


def _touch(path: Path, age_s: float = 0.0, folder: bool = False) -> Path:
    path.mkdir() if folder else path.write_bytes(b"partial")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_stale_temporaries_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead, live = _dead_pid(), os.getpid()
    (tmp_path / "renders").mkdir()
    stale = [
        _touch(tmp_path / f".checkpoint.pt.{dead}.ab12cd34.tmp"),
        _touch(tmp_path / f".scene.shac.{dead}.x1y2z3w4.tmp"),
        _touch(tmp_path / f".frames.{dead}.k9k9k9k9.tmp", folder=True),
        _touch(tmp_path / "renders" / f".r_0.png.{dead}.abcdefgh.tmp"),
        _touch(tmp_path / ".checkpoint.pt.abc123.tmp", age_s=OLD_TEMPORARY_AGE_S + 60),
        _touch(tmp_path / ".scene.shac.x1y2.tmp", age_s=OLD_TEMPORARY_AGE_S + 60),
        # the same PID as a live process, written long before it started: PID reuse
        _touch(tmp_path / f".metrics.json.{live}.aaaa1111.tmp", age_s=10 * 365 * 86400),
    ]
    kept = [
        _touch(tmp_path / f".scene.shac.{live}.zzzz9999.tmp"),
        _touch(tmp_path / ".checkpoint.pt.fresh1.tmp"),
        _touch(tmp_path / "scene.shac", age_s=86400),
        _touch(tmp_path / ".hidden.tmp", age_s=86400),
        _touch(tmp_path / ".config", age_s=86400),
    ]
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted(stale)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_prepare_output_dir_cleans_and_checks_before_work(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert prepare_output_dir(out) == out and not out.exists()
    out.mkdir()
    temp = _touch(out / f".checkpoint.pt.{_dead_pid()}.q1w2e3r4.tmp")
    prepare_output_dir(out)
    assert not temp.exists()
    for bad in _unwritable(tmp_path):
        with pytest.raises(OutputError):
            prepare_output_dir(bad)
