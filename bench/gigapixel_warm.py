"""Child process of ``bench/gigapixel.py scale``: open a file once (as the viewer does),
then time a 1024x1024 region and a 1/64 preview (``step`` 8) rendered from the loaded
model; prints JSON."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from wisp_shacira.lod import open_source, open_stream
from wisp_shacira.tasks.image_tiles import Window


def main() -> None:
    path = Path(sys.argv[1])
    start = time.perf_counter()
    source = open_source(open_stream(path))
    opened = time.perf_counter() - start
    side = source.width
    times = {}
    for name, window in (("region_1024", Window(side // 2, side // 2, 1024, 1024)),
                         ("preview_1_64", Window(0, 0, side, source.height, 8))):
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            source.window(window, source.num_levels)
            runs.append(time.perf_counter() - start)
        times[name] = min(runs)
    print(json.dumps({"open_seconds": opened, **{f"{k}_seconds": v for k, v in times.items()}}))


if __name__ == "__main__":
    main()
