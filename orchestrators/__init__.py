"""Orchestrators: the `download_job` orchestration (steps in `download_flow.py`), as a blueprint.

The function body is a plain generator; the Durable SDK drives it through replay. It does no
I/O, reads no clock and no environment: everything it decides comes from `videojob.orchestration`.
"""

import azure.durable_functions as df

from .download_flow import run_job

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def download_job(context: df.DurableOrchestrationContext):
    """Input: `JobPlan.to_wire()`. Output on success: see `videojob.orchestration.success_output`."""
    return (yield from run_job(context))
