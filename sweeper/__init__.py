"""Sweeper: a timer trigger deleting container groups no running job needs any more.

It is what cleans up after the Durable terminate webhook, which runs no orchestrator code.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from videojob import bootstrap

from .sweep import SweepSummary, sweep

__all__ = ["SweepSummary", "bp", "sweep", "sweep_container_groups"]

log = logging.getLogger(__name__)

bp = df.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def sweep_container_groups(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    if timer.past_due:
        log.info("sweep: running late (past due)")
    summary = await sweep(client, bootstrap.backend(), bootstrap.settings(), datetime.now(UTC))
    log.info(summary.line())
