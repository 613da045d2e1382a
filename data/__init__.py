"""Bundled demo data, installed as ``wisp_shacira.bundled.data`` (see pyproject.toml);
look files up with ``wisp_shacira.resources.demo_data``."""
