"""Bundled demo data and configs, shipped inside the installed package.

``wisp_shacira.bundled.data`` and ``wisp_shacira.bundled.configs`` are the repository's
top-level ``data/`` and ``configs/`` folders, mapped in by ``[tool.setuptools.package-dir]``
in ``pyproject.toml`` (a wheel copies them here; an editable install imports them from
the folders themselves). Look files up with :mod:`wisp_shacira.resources`, not by path.
"""
