"""HTTP API: the download starters, the job list, cancel, the worker callback and the web page
(one blueprint).

Not named `http`: that would shadow the standard library's `http` package.
"""

from . import callback, cancel, job_list, job_routes, starters, web_page
from .blueprint import bp

job_routes_bp = job_routes.bp
"""`GET` / `DELETE /api/downloads/{id}` (issue 21), on a blueprint of their own."""

__all__ = ["bp", "callback", "cancel", "job_list", "job_routes", "job_routes_bp", "starters", "web_page"]
