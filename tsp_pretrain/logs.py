"""One logging set-up for every stage: timestamps, level, and the stage's name."""

from __future__ import annotations

import logging
import os


def setup_logging(name: str) -> logging.Logger:
    """Configure the root logger once (level from ``TSP_LOG_LEVEL``, default INFO)."""
    logging.basicConfig(
        level=os.environ.get("TSP_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s {name} %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.captureWarnings(True)
    return logging.getLogger(name)
