"""The video job: the contract, settings and policy shared by the function app and the worker.

Everything here is plain Python over small frozen dataclasses, except `backends/`, which holds
the container backends (the only place a container SDK or process API is touched).
"""
