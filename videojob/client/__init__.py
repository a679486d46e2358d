"""The command-line client of the HTTP API (`python -m videojob.client.cli`)."""
