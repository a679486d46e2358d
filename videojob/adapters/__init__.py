"""Adapters: the code that talks to the outside (container backends: ACI, podman, local processes;
the Durable HTTP API; the job index table), behind the domain's interfaces."""
