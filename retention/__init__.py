"""Retention: a timer trigger removing finished jobs older than `JOB_RETENTION_DAYS` everywhere
(policy: `videojob.domain.retention`, the run: `retention.purge`).

Durable history through the extension's client endpoint, the job list's index rows, and, where the
output is Azurite (reached by `OUTPUT_CONNECTION_STRING`: the devhost), the output blobs and result
records by age, the rule the lifecycle management policy applies to the output account in Azure.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationBindings import DurableOrchestrationBindings

from api.starters import BATCH_ORCHESTRATOR_NAME, ORCHESTRATOR_NAME
from videojob import bootstrap
from videojob.adapters.durable_http import DurableHttp
from videojob.domain.retention import RETENTION_SCHEDULE, RetentionSummary

from .blobs import expiring_blobs
from .purge import run_retention

__all__ = ["RetentionSummary", "bp", "purge_expired_jobs", "run_retention"]

log = logging.getLogger(__name__)

bp = df.Blueprint()

APP_ORCHESTRATORS = frozenset({ORCHESTRATOR_NAME, BATCH_ORCHESTRATOR_NAME})
"""This app's orchestrations (batch items and listings are `download_job`s); nothing else in the task hub."""


@bp.timer_trigger(arg_name="timer", schedule=RETENTION_SCHEDULE, run_on_startup=False, use_monitor=True)
@bp.generic_input_binding(arg_name="client", type="durableClient")
async def purge_expired_jobs(timer: func.TimerRequest, client: str) -> None:
    settings = bootstrap.settings()
    rpc_base_url = DurableOrchestrationBindings.from_json(client).rpc_base_url
    if not rpc_base_url:
        log.warning("retention: the durable client binding has no rpcBaseUrl")
        return
    summary = await run_retention(DurableHttp(rpc_base_url), bootstrap.job_index(), expiring_blobs(settings),
                                  APP_ORCHESTRATORS, settings.job_retention_days, datetime.now(UTC))
    log.info(summary.line())
