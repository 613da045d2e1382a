"""Compressing whole datasets: every input at every rate point as one job
(:mod:`~wisp_shacira.batch.jobs`), run one after another or on Ray
(:mod:`~wisp_shacira.batch.ray_pool`, optional extra ``ray``), resumed after a crash, and
collected into one report (:mod:`~wisp_shacira.batch.runner`)."""
