"""The latent-rate lines of the summaries: the training prior's estimate against its
own coding, and against the file's when that is the other one."""
from __future__ import annotations

from wisp_shacira.tasks.report import latent_rate_lines, latent_rate_text


def test_the_estimate_is_compared_with_its_own_coding_and_the_files() -> None:
    rate = {"entropy_model": "factorized", "latent_coder": "context", "model_bytes": 1000.0,
            "latent_bytes": 900, "own_coding_bytes": 1010,
            "file_bytes": {"factorized": 1200, "context": 1100}}
    text = latent_rate_text(rate)
    assert text == ("the factorized model reports 1000 bytes, its factorized coding wrote "
                    "1010 (+1.0%); the file's context coding wrote 900 (-10.0%)")
    lines = latent_rate_lines([rate, None], ["a", "b"])
    assert lines.count("\n") == 2 and "wrote context" in lines


def test_a_file_in_the_priors_own_coding_is_one_comparison() -> None:
    rate = {"entropy_model": "context", "latent_coder": "context", "model_bytes": 500.0,
            "latent_bytes": 510}
    assert latent_rate_text(rate) == "the context model reports 500 bytes, its context coding wrote 510 (+2.0%)"
