"""The function app: wiring only. Each blueprint lives with its concern."""

import azure.durable_functions as df
import azure.functions as func

import activities
import api
import entities
import orchestrators
import retention
import sweeper

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(api.bp)
app.register_functions(api.job_routes_bp)
app.register_functions(orchestrators.bp)
app.register_functions(activities.bp)
app.register_functions(sweeper.bp)
app.register_functions(retention.bp)
app.register_functions(entities.bp)
