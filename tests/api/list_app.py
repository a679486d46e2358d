"""The function app plus an orchestration that is not one of its jobs, as another app sharing the
task hub (or a later version of this one) would add: the job list must leave it out."""

import azure.durable_functions as df

from function_app import app

__all__ = ["app"]


@app.orchestration_trigger(context_name="context")
def another_apps_flow(context: df.DurableOrchestrationContext):  # noqa: ANN201
    yield context.create_timer(context.current_utc_datetime.replace(year=context.current_utc_datetime.year + 1))
