"""``wisp.app_utils`` (test double)."""
import logging


def default_log_setup(level: int = logging.INFO) -> None:
    """As Wisp: configure the root logger at ``level``."""
    logging.getLogger().setLevel(level)
