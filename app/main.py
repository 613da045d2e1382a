"""Train -> export -> decode -> report, for any task, from a YAML config.

Usage::

    python app/main.py --config configs/shacira_nerf.yaml [--output DIR] [--section.key VALUE ...]

The same as the installed ``wisp-shacira encode`` (see ``wisp-shacira encode --help``
for every config key): the config's ``task`` key picks the pipeline (image, video,
nerf); any config value can be overridden with its dotted path; unknown keys are errors.
"""
import sys

from wisp_shacira.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["encode", *sys.argv[1:]]))
