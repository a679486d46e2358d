"""The devhost's emulation of the Functions host and the Durable extension: function loading and
invocation (`functions`), the extension's replay as pure functions (`actions`, `episode`, `history`),
the engine and its SQLite store, the Durable HTTP API (`webhooks`), routes, timer schedules and the
HTTP server (`python -m devhost`). For development only: nothing in the function app imports it."""
