"""The worker: the program that runs inside a job's container group (`python -m worker`).

It reads the container env contract (`videojob.contract.container_env`), downloads the media with
yt-dlp, verifies it with ffprobe, uploads it to Blob Storage and reports every step to the
callback URL as `JobStatus` events. Pure policy (error classification, progress throttling,
byte budget, naming, stream checks) lives in small modules; yt-dlp, ffprobe, the blob SDK and
HTTP sit at the edges behind small interfaces.
"""
