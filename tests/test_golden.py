"""Golden files: every format version ever written keeps decoding to the same output.

The files under ``tests/golden/v<version>_<commit>/`` were written once by the writer
of that commit and are never regenerated; ``manifest.json`` records, also once, the
digest of each file, of its decoded model (configuration, integer latents, weights)
of its reconstruction and of its decoded field's float outputs (see ``digest``): one
value for every machine, since decoding uses machine-independent arithmetic. A change
that alters how an existing file decodes fails here, on any machine.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from wisp_shacira.codec.container import READABLE_VERSIONS, unpack_sections
from wisp_shacira.codec.model_io import encode_model, read_shac

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
from digest import field_digest, model_digest, output_digest  # noqa: E402

MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())
FILES = sorted(MANIFEST)


def test_every_file_is_listed_and_every_version_and_task_is_covered() -> None:
    on_disk = sorted(p.relative_to(GOLDEN).as_posix() for p in GOLDEN.glob("v*/*.shac"))
    assert on_disk == FILES
    covered = {(read_shac(GOLDEN / f, max_lod=0).config["task"], unpack_sections(
        (GOLDEN / f).read_bytes()).version) for f in FILES}
    for version in READABLE_VERSIONS:
        for task in ("image", "video", "nerf"):
            assert (task, version) in covered, (task, version)


@pytest.mark.parametrize("name", FILES)
def test_golden_file_decodes_to_its_recorded_output(name: str) -> None:
    path = GOLDEN / name
    entry = MANIFEST[name]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["file_sha256"], "file changed"
    assert model_digest(path) == entry["model_sha256"]
    assert output_digest(path) == entry["output_sha256"]
    assert field_digest(path) == entry["field_sha256"]


@pytest.mark.parametrize("name", FILES)
def test_todays_writer_reproduces_each_version_byte_for_byte(name: str) -> None:
    """Re-encoding the decoded model in the file's own version gives the same bytes: the
    legacy coder layout is reproduced exactly, not just decoded."""
    data = (GOLDEN / name).read_bytes()
    version = unpack_sections(data).version
    assert encode_model(read_shac(GOLDEN / name), version=version) == data
