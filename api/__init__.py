"""HTTP API: the download starters, cancel and the worker callback (one blueprint).

Not named `http`: that would shadow the standard library's `http` package.
"""

from . import callback, cancel, starters
from .blueprint import bp

__all__ = ["bp", "callback", "cancel", "starters"]
