"""HTTP API: the download starters, the job list, cancel, the worker callback and the web page
(one blueprint).

Not named `http`: that would shadow the standard library's `http` package.
"""

from . import callback, cancel, job_list, starters, web_page
from .blueprint import bp

__all__ = ["bp", "callback", "cancel", "job_list", "starters", "web_page"]
