"""The video job, by layer (docs/design.md "Layout"; the import rules are in pyproject.toml):
`contract/` (what the app and the worker share: the worker imports nothing else of this package),
`domain/` (pure policy), `adapters/` (Azure, podman, processes), `client/` (the CLI) and
`bootstrap.py` (the composition root).
"""
