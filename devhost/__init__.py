"""Local development host: runs `function_app.py` on this machine without Azure or Core Tools.

It plays the part of the Functions host and the Durable extension for development only: the
app's HTTP routes, the Durable HTTP API and client RPC, orchestration replay through the SDK's
own entry point, activities, durable timers and the timer-triggered sweeper, with state in
SQLite. Nothing in the function app depends on it.
"""
