#!/usr/bin/env bash
# Wheel smoke test: build the wheel, install its core (no extras) into a fresh virtual
# environment with a CPU torch, and run one encode/decode round trip of the bundled demo
# image with the installed `wisp-shacira` command from a folder outside the repository.
# Proves that the package data (demo data, configs) ships and that the core install
# needs none of the extras. Usage: .ci/wheel_smoke.sh [WORK_DIR]  (default: a temp dir)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -ge 1 ]; then
    WORK="$1"
else
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"
SRC="$WORK/src" WHEELS="$WORK/wheels" VENV="$WORK/venv" RUN="$WORK/run"
rm -rf "$SRC" "$WHEELS" "$VENV" "$RUN"
mkdir -p "$SRC" "$WHEELS" "$RUN"
start=$SECONDS

# Build from a copy of the working tree's packaging inputs: an in-tree build reuses
# build/lib, where files deleted from the sources would survive into the wheel.
(cd "$REPO" && tar -cf - --exclude=__pycache__ --exclude='*.egg-info' \
    pyproject.toml setup.py README.md wisp_shacira data configs) | tar -xf - -C "$SRC"
python -m pip wheel -q --no-deps --no-build-isolation "$SRC" -w "$WHEELS"
WHEEL="$(ls "$WHEELS"/wisp_shacira-*.whl)"
echo "built $(basename "$WHEEL") ($(stat -c %s "$WHEEL") bytes) in $((SECONDS - start)) s"

python -m venv "$VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip_install() {   # this machine's pip config lists local indexes that may be absent
    "$VENV/bin/python" -m pip install -q "$@" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}
pip_install torch==2.13.0
pip_install "$WHEEL"                                   # core install: no extras
echo "installed into $VENV in $((SECONDS - start)) s"

cd "$RUN"                                              # nowhere near the repository
export PATH="$VENV/bin:$PATH" OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
"$VENV/bin/python" - <<'PY'
import importlib.util, sys
import wisp_shacira
assert "site-packages" in wisp_shacira.__file__, wisp_shacira.__file__
extras = ["av", "matplotlib", "skimage", "viser", "numba", "OpenEXR", "tensorboard"]
present = [m for m in extras if importlib.util.find_spec(m) is not None]
assert not present, f"the core install pulled in extras: {present}"
print(f"wisp_shacira {wisp_shacira.__version__} from {wisp_shacira.__file__}; no extras")
PY
wisp-shacira encode --config shacira_image --trainer.iterations 30 --output OUT
test -s OUT/demo_image.shac
wisp-shacira decode OUT/demo_image.shac -o x.png
test -s x.png
wisp-shacira info OUT/demo_image.shac

echo "wheel smoke test passed in $((SECONDS - start)) s"
