"""Orchestrators: `download_job` (steps in `download_flow.py`) and `download_batch` (many
`download_job` children under one window, `batch_flow.py`), as a blueprint.

The function body is a plain generator; the Durable SDK drives it through replay. It does no
I/O, reads no clock and no environment: everything it decides comes from `videojob.domain.orchestration`.
"""

import azure.durable_functions as df

from .batch_flow import run_batch
from .download_flow import run_job

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def download_job(context: df.DurableOrchestrationContext):
    """Input: `JobPlan.to_wire()`. Output on success: see `videojob.domain.orchestration.success_output`."""
    return (yield from run_job(context))


@bp.orchestration_trigger(context_name="context")
def download_batch(context: df.DurableOrchestrationContext):
    """Input: `BatchPlan.to_wire()`. Output: see `videojob.domain.batching` (a per-item report)."""
    return (yield from run_batch(context))
