"""Bundled configs, installed as ``wisp_shacira.bundled.configs`` (see pyproject.toml);
look them up with ``wisp_shacira.resources.bundled_config`` / ``resolve_config``."""
