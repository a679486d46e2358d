"""The domain: pure policy over small frozen dataclasses (orchestration decisions, the job queue,
the sweep, generations, planning, the settings model, tokens, the report gate, the job index rules)
and the interfaces the adapters implement. No Azure SDK, yt-dlp, aiohttp or subprocess."""
