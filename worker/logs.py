"""Logging set-up shared by the job process and the upload process (no heavy imports here)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable


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


_hidden: set[str] = set()
MIN_HIDDEN_LENGTH = 6
"""Shorter strings (a cookie value `1`) would blank ordinary words out of every line."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (of at least `MIN_HIDDEN_LENGTH` characters) replaced by `***`."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_HIDDEN_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class _HideSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _hidden:
            message = record.getMessage()
            hidden = redact(message, _hidden)
            if hidden != message:
                record.msg, record.args = hidden, ()
        return True


def hide(secrets: Iterable[str]) -> None:
    """From now on, no log line of this process shows any of `secrets` (the operator's cookie
    values and proxy credentials): a filter on every handler of the root logger."""
    _hidden.update(s for s in secrets if len(s) >= MIN_HIDDEN_LENGTH)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _HideSecrets) for f in handler.filters):
            handler.addFilter(_HideSecrets())
