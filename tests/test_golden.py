"""Golden files: every format version ever written keeps decoding to the same output.

The files under ``tests/golden/v<version>_<commit>/`` were written once by the writer
of that commit and are never regenerated; ``manifest.json`` records, also once, the
digest of each file, of its decoded model (configuration, integer latents, weights)
of its reconstruction and of its decoded field's float outputs (see ``digest``): one
value for every machine, since decoding uses machine-independent arithmetic. A change
that alters how an existing file decodes fails here, on any machine. (Once, on
2026-12-04, the scene files' float ``field_sha256`` was re-recorded: the old values held
the last bits of MKL's square root on the recording CPU, see ``exact.exact_sqrt``; their
output digests stayed.)
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
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


#: Environments that switch the CPU code paths of one machine the way another CPU would:
#: MKL's conditional-numerical-reproducibility branch and ATen's vector instruction set.
CODE_PATHS = [{"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default"},
              {"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}]
_DIGESTS = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from digest import field_digest, output_digest
print(json.dumps({name: [field_digest(Path(sys.argv[1]) / name), output_digest(Path(sys.argv[1]) / name)]
                  for name in sys.argv[2:]}))
"""


@pytest.mark.parametrize("env", CODE_PATHS, ids=lambda env: env["MKL_CBWR"])
def test_the_newest_files_decode_alike_on_other_cpu_code_paths(env: dict[str, str]) -> None:
    """What another CPU would run (here forced on this one through the libraries'
    switches) decodes the newest image, video and scene to the recorded digests."""
    newest = max(READABLE_VERSIONS)
    names = sorted(f for f in FILES if unpack_sections((GOLDEN / f).read_bytes()).version == newest
                   and Path(f).stem in ("image", "video", "scene"))
    assert len(names) == 3, names
    run = subprocess.run([sys.executable, "-c", _DIGESTS, str(GOLDEN), *names], check=True,
                         capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got == {n: [MANIFEST[n]["field_sha256"], MANIFEST[n]["output_sha256"]] for n in names}
