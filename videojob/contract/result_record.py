"""The worker's result record: its terminal event, stored next to its output before it reports.

When the terminal report never reaches the orchestration (lost at a generation's hand-over, the
function app down while the worker retried, the worker gave up after
`Tuning.callback_final_give_up_seconds`), the heartbeat check finds the container ended and reads
this record (`read_result_record` activity) instead of failing `heartbeat_lost`.

The blob is `result_record_name(job, attempt, run)`: the attempt's staging record in
`STAGING_CONTAINER` (`videojob.contract.staging`), written through the one SAS that names it (issue 19).
The name is the orchestration's choice, but the MAC is still what proves the record: it is an
HMAC-SHA256 keyed with the callback token that worker holds (`container_spec.worker_callback_token`)
over the canonical JSON of `{version, run, event}`; the token itself is never written. The reader
also insists on the job id, attempt and run it asked for, on a terminal state and on a size bound,
and a recovered success is still published and hashed like a reported one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from videojob.contract.wire import MAX_EVENT_BYTES, ContractError, EventState, JobStatus

RECORD_VERSION = 1
MAX_RECORD_BYTES = MAX_EVENT_BYTES + 1024


class RecordRefused(Exception):
    """A record that is not this attempt's outcome. The message says why (no secret in it)."""


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _mac(key: str, body: dict[str, Any]) -> str:
    digest = hmac.new(key.encode("utf-8"), _canonical(body), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class ResultRecord:
    event: JobStatus
    """A terminal event (`succeeded` or `failed`) with `jobId`, `attempt` and `seq`."""
    run: str | None

    def to_bytes(self, mac_key: str) -> bytes:
        body = {"version": RECORD_VERSION, "run": self.run, "event": self.event.to_wire()}
        data = _canonical({**body, "mac": _mac(mac_key, body)})
        if len(data) > MAX_RECORD_BYTES:
            raise ValueError(f"a result record may not exceed {MAX_RECORD_BYTES} bytes")
        return data


def parse_record(data: bytes, *, job_id: str, attempt: int, run: str | None, mac_key: str) -> JobStatus:
    """The terminal event of job `job_id`'s attempt `attempt` of run `run`, or `RecordRefused`."""
    if len(data) > MAX_RECORD_BYTES:
        raise RecordRefused(f"the record is over {MAX_RECORD_BYTES} bytes")
    try:
        d = json.loads(data)
    except (ValueError, RecursionError):
        raise RecordRefused("the record is not JSON") from None
    if not isinstance(d, dict) or set(d) != {"version", "run", "event", "mac"}:
        raise RecordRefused("the record is not a result record")
    if d["version"] != RECORD_VERSION:
        raise RecordRefused(f"record version {str(d['version'])[:20]!r} is not {RECORD_VERSION}")
    mac = d["mac"]
    body = {k: d[k] for k in ("version", "run", "event")}
    if not isinstance(mac, str) or not hmac.compare_digest(mac.encode(), _mac(mac_key, body).encode()):
        raise RecordRefused("the record's MAC does not match this job")
    if d["run"] != run:
        raise RecordRefused("the record is of another run")
    try:
        event = JobStatus.from_wire(d["event"])
    except (ContractError, KeyError, TypeError, ValueError) as e:
        raise RecordRefused(f"the record's event is invalid: {str(e)[:200]}") from None
    if event.state not in (EventState.SUCCEEDED, EventState.FAILED):
        raise RecordRefused(f"the record's event is {event.state}, not an outcome")
    if event.job_id != job_id or (event.attempt or 1) != attempt:
        raise RecordRefused("the record is of another job or attempt")
    return event
