"""A Ray worker setup hook for tests (imported by the workers, not collected by pytest):
the job whose input stem is ``$WISP_SHACIRA_TEST_KILL`` kills its worker process every
time it starts; every attempt of every job is logged to ``$WISP_SHACIRA_TEST_LOG``."""
from __future__ import annotations

import os


def setup() -> None:
    import wisp_shacira.batch.ray_pool as pool
    original = pool.run_job

    def run_job(job, threads=None):
        with open(os.environ["WISP_SHACIRA_TEST_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{job.name}\n")
        if job.input.stem == os.environ.get("WISP_SHACIRA_TEST_KILL"):
            os._exit(1)
        return original(job, threads)

    pool.run_job = run_job
