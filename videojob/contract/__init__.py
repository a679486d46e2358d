"""The contract between the app and the worker: wire shapes, codes and phases, the worker's
environment, where a worker writes and how its output is named, the result record, the URL policy.
The worker imports this package and nothing else of videojob/ (import-linter, pyproject.toml);
it imports only the standard library."""
