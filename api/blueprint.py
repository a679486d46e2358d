"""The one blueprint every HTTP route of the API registers on."""

import azure.durable_functions as df

bp = df.Blueprint()
