"""The app's Azure identity: one `DefaultAzureCredential` per process, shared by the blob activities
and the job index (it caches tokens)."""

from __future__ import annotations

import threading
from typing import Any

_credential_lock = threading.Lock()
_credential: Any = None


def default_credential() -> Any:
    """One `DefaultAzureCredential` per process (it caches tokens); `AZURE_CLIENT_ID` picks the
    function app's user-assigned identity."""
    global _credential
    with _credential_lock:
        if _credential is None:
            from azure.identity import DefaultAzureCredential

            _credential = DefaultAzureCredential()
        return _credential
