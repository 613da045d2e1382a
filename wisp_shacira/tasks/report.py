"""Plain-text tables and lines of the run summaries."""
from __future__ import annotations

from typing import Sequence


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Align ``rows`` under ``header``; floats are shown with 4 significant decimals,
    None (a metric not computed) as ``n/a``."""
    def cell(value: object) -> str:
        if value is None:
            return "n/a"
        if isinstance(value, float):
            return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
        return str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in text)) if text else len(str(h))
              for i, h in enumerate(header)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in text]
    return "\n".join(lines)


def rate_control_lines(reports: Sequence[dict | None], names: Sequence[str]) -> str:
    """Lines saying, per run with rate control, the requested and the reached size
    (empty when no run had a target)."""
    lines = []
    for name, report in zip(names, reports):
        if report is None:
            continue
        verdict = "within 5%" if report["within_5_percent"] else "NOT within 5%"
        passes = ", ".join(f"x{p['lambda_scale']:.3g}: {p['bytes']}" for p in report["passes"])
        lines.append(f"rate control {name}: target {report['target_bytes']} bytes, reached "
                     f"{report['reached_bytes']} ({100 * report['error']:+.1f}%, {verdict}); "
                     f"{len(report['passes'])} training pass{'es' if len(report['passes']) > 1 else ''} "
                     f"(lambda scale: bytes) {passes}")
    return "".join(f"\n{line}" for line in lines)


def latent_rate_text(rate: dict) -> str:
    """The latent rate the training prior reports against the level bytes of its own
    coding and, when the file holds the other coding, of the file's."""
    model, coded = rate["model_bytes"], rate["latent_bytes"]
    own, coder = rate["entropy_model"], rate.get("latent_coder", rate["entropy_model"])
    own_bytes = rate.get("own_coding_bytes", coded if coder == own else None)

    def versus(nbytes: int) -> str:
        return f"{nbytes} ({100 * (nbytes / max(model, 1e-9) - 1):+.1f}%)"

    text = f"the {own} model reports {model:.0f} bytes"
    if own_bytes is not None:
        text += f", its {own} coding wrote {versus(own_bytes)}"
    return text if coder == own else text + f"; the file's {coder} coding wrote {versus(coded)}"


def latent_rate_lines(rates: Sequence[dict | None], names: Sequence[str]) -> str:
    """Lines comparing, per file, the latent rate the entropy model reports with the bytes
    the coders wrote (see :func:`~wisp_shacira.tasks.common.write_model`)."""
    lines = []
    for name, rate in zip(names, rates):
        if rate is None:
            continue
        coder = rate.get("latent_coder", rate["entropy_model"])
        lines.append(f"latent rate {name}: {latent_rate_text(rate)}")
        tried = rate.get("file_bytes", {})
        if len(tried) > 1:
            lines.append(f"latent coding {name}: " + ", ".join(
                f"{other} {size:,} bytes" for other, size in tried.items()) + f"; wrote {coder}")
    return "".join(f"\n{line}" for line in lines)
