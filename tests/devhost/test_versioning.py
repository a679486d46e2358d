"""Orchestration versioning as a new user of the Durable Python SDK meets it: its sample
`samples-v2/orchestration_versioning` (Azure/azure-functions-durable-python@20ceeaaf, README.md:
the output under defaultVersion 1.0, under 2.0, and for an instance started under 1.0 that
resumes after host.json moved to 2.0; "Overriding Version Programmatically"), here as the
equivalent app tests/devhost/versioning_app served from its own folder. The SDK reads
`context.version` from `ExecutionStarted.Version` (DurableOrchestrationContext.py
`_extract_version_from_history`) and sends `start_new(version=)` as `?version=`
(DurableOrchestrationClient.py `_get_start_new_url`); `call_sub_orchestrator(version=)` puts
`version` on the action (CallSubOrchestratorAction.py)."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

from devhost import stack
from tests.e2e.harness import Job, http

APP = Path(__file__).parent / "versioning_app"


def start(base: str, version: str | None = None) -> Job:
    query = f"?version={version}" if version else ""
    code, links = http("POST", f"{base}/api/start/versioned{query}")
    assert code == 202, links
    return Job(links["id"], links)


def waiting(job: Job) -> None:
    job.wait(lambda b: b.get("customStatus") == "waiting for Proceed", timeout=60)


def proceed(job: Job) -> dict:
    assert http("POST", job.links["sendEventPostUri"].replace("{eventName}", "Proceed"), {})[0] == 202
    done = job.wait_done(timeout=60)
    assert done["runtimeStatus"] == "Completed", done
    return done["output"]


def test_the_sdk_versioning_sample_gives_its_documented_results(tmp_path):
    app = tmp_path / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    state = tmp_path / "state"
    devhost = stack.Devhost(stack.free_port(), state, tmp_path / "devhost.log")
    env = dict(stack.os.environ) | {"CALLBACK_SIGNING_KEY": secrets.token_urlsafe(48)}
    args = ("--app-dir", str(app), "--settings", str(tmp_path / "local.settings.json"))
    devhost.start(env, args)
    try:
        old = start(devhost.base_url)
        pinned = start(devhost.base_url, version="2.0")
        waiting(old)
        waiting(pinned)

        # defaultVersion 1.0: the legacy path; a version given to start_new wins over it
        assert proceed(pinned) == {"version": "2.0", "pinned_child": "0.9", "default_child": "1.0",
                                   "step": "current"}

        devhost.stop()  # redeploy with defaultVersion 2.0 while `old` waits
        host = json.loads((app / "host.json").read_text())
        host["extensions"]["durableTask"]["defaultVersion"] = "2.0"
        (app / "host.json").write_text(json.dumps(host))
        devhost.start(env, args)

        # the instance keeps its version (and its path); only a child created now gets 2.0
        assert proceed(old) == {"version": "1.0", "pinned_child": "0.9", "default_child": "2.0", "step": "legacy"}
        new = start(devhost.base_url)
        waiting(new)
        assert proceed(new) == {"version": "2.0", "pinned_child": "0.9", "default_child": "2.0", "step": "current"}
    finally:
        devhost.stop()
