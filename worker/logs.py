"""Logging set-up shared by the job process and the upload process (no heavy imports here)."""

from __future__ import annotations

import logging
import sys


def configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    # The SDKs log request headers at INFO/DEBUG; keep them quiet (they redact, but nothing to gain).
    for noisy in ("azure", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
