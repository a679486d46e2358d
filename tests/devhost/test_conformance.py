"""The devhost against the Durable extension's own source: every expected code, header and encoding
below is read from `tests/devhost/data/http_api_handler.json`, an extract of
Azure/azure-functions-durable-extension (HttpApiHandler.cs and what it calls) at the commit it
names; each test cites the lines it is written from."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from devhost.stack import wait_until
from tests.devhost.conftest import SampleHost, start
from tests.e2e.harness import http

EXTRACT = json.loads((Path(__file__).parent / "data" / "http_api_handler.json").read_text())
WEBHOOK = "/runtime/webhooks/durabletask"
RPC = "/durabletask"


def call(method: str, url: str, data: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """Status, headers (lower-case names) and JSON body (or text) of one request."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, hdrs, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, e.headers, e.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode(errors="replace")
    return status, {k.lower(): v for k, v in hdrs.items()}, body


def post_json(url: str, text: str, media_type: str = "application/json") -> tuple[int, dict[str, str], Any]:
    return call("POST", url, text.encode(), {"Content-Type": media_type})


def recorded(sample: SampleHost, key: str, count: int, base: str = WEBHOOK) -> list[dict[str, Any]]:
    """The recorder entity's log once it holds `count` operations."""
    url = f"{sample.base}{base}/entities/recorder/{key}"
    wait_until(lambda: (lambda r: r[0] == 200 and len(r[1]) >= count)(http("GET", url)), 60,
               f"recorder {key} holds {count} operations")
    return http("GET", url)[1]


# -- entities: what an operation receives (extract: entity_input_encoding) ----------------------


def test_a_python_client_signal_reaches_the_entity_as_the_value_it_sent(sample: SampleHost):
    """DurableOrchestrationClient.py:547-550 posts json.dumps(input) as JSON; HttpApiHandler.cs:1070-1089
    keeps the JSON token; RequestMessage.cs:90-92 writes it as is; EntityTriggerAttributeBindingProvider.cs:187-190
    hands it over unchanged; DurableEntityContext.py:160-164 decodes twice: the entity sees the dict."""
    key = uuid.uuid4().hex[:8]
    value = {"ids": ["a", "b"], "n": 2}

    assert http("POST", f"{sample.base}/api/signal/recorder/{key}", value)[0] == 202

    assert recorded(sample, key, 1) == [{"op": "record", "input": value, "type": "dict"}]


def test_an_orchestration_signal_and_a_client_signal_deliver_the_same_value(sample: SampleHost):
    """OutOfProcOrchestrationShim.cs:152-159 + RequestMessage.cs:94-97 (the action's JSON text
    serialized once more) against the client path above: one value, one type, both ways."""
    key = uuid.uuid4().hex[:8]
    value = {"text": "{\"not\": \"decoded\"}", "n": 1}

    start(sample, "recording", {"key": key, "value": value}).wait_done(timeout=60)
    assert http("POST", f"{sample.base}/api/signal/recorder/{key}", value)[0] == 202

    log = recorded(sample, key, 2)
    assert [(e["input"], e["type"]) for e in log] == [(value, "dict"), (value, "dict")]


def test_a_raw_http_signal_body_is_the_request_input_as_is(sample: SampleHost):
    """HttpApiHandler.cs:1073-1089: a JSON body is kept as its token, any other body as a string;
    the SDK's get_input (DurableEntityContext.py:160-164) then decodes that twice: a JSON string
    holding JSON text gives the value, a bare JSON number cannot be decoded a second time (as in
    Azure), a text/plain body gives the text."""
    key = uuid.uuid4().hex[:8]
    url = f"{sample.base}{WEBHOOK}/entities/recorder/{key}?op=record"

    assert post_json(url, json.dumps(json.dumps([1, 2])))[0] == 202
    assert post_json(url, "7")[0] == 202
    assert post_json(url, "\"hello\"", "text/plain")[0] == 202

    log = recorded(sample, key, 3)
    assert log[0] == {"op": "record", "input": [1, 2], "type": "list"}
    assert log[1] == {"op": "record", "error": "TypeError"}
    assert log[2] == {"op": "record", "input": "hello", "type": "str"}


# -- the entity HTTP API (extract: entities) -------------------------------------------------------


@pytest.mark.parametrize("base", [WEBHOOK, RPC])
def test_entity_operation_requests_answer_like_the_handler(sample: SampleHost, base: str):
    """HttpApiHandler.cs:1054-1061 (no `op`: the empty operation; DELETE: `delete`), 1063-1066 and
    1089-1090 (202), 1079-1082 (bad JSON: 400), 343-346 + DurableClient.cs:323-326 (unknown entity
    name: 400)."""
    spec = EXTRACT["entities"]
    key = uuid.uuid4().hex[:8]
    url = f"{sample.base}{base}/entities/recorder/{key}"

    no_op = post_json(url, json.dumps(json.dumps("x")))
    deleted = call("DELETE", url)
    bad_json = post_json(f"{url}?op=record", "{not json")
    unknown = post_json(f"{sample.base}{base}/entities/nosuchentity/{key}?op=add", "1")

    assert no_op[0] == spec["post"]["status"] and deleted[0] == spec["post"]["status"]
    log = recorded(sample, key, 2, base)
    assert [e["op"] for e in log] == [spec["post"]["missing_op_is"], spec["post"]["delete_method_op"]]
    assert bad_json[0] == spec["post_invalid_json"]["status"]
    assert bad_json[2]["Message"].startswith(spec["post_invalid_json"]["message_prefix"])
    assert unknown[0] == spec["unknown_entity_name"]["status"]
    assert unknown[2]["Message"].startswith(spec["unknown_entity_name"]["message"].format(name="nosuchentity"))


def test_entities_of_a_name_are_listed_in_pages_with_the_handlers_options(sample: SampleHost):
    """HttpApiHandler.cs:513-552 (lastOperationTimeFrom/To, top, fetchState, the continuation
    header on every page), DurableEntityStatus.cs:69-88 (entityId, lastOperationTime, state),
    EntityQuery.cs:41 (fetchState defaults to false); entity-id order (PartitionKey `@name@key`)."""
    spec = EXTRACT["entities"]["list"]
    header = EXTRACT["continuation_header"]["name"]
    keys = sorted(f"list-{uuid.uuid4().hex[:6]}-{i}" for i in range(3))
    for key in reversed(keys):
        assert http("POST", f"{sample.base}/api/signal/recorder/{key}", {"k": key})[0] == 202
    for key in keys:
        recorded(sample, key, 1)
    url = f"{sample.base}{WEBHOOK}/entities/recorder?top=2&fetchState=true"

    pages, token = [], None
    while True:
        status, headers, page = call("GET", url, headers={header: token} if token else {})
        assert status == spec["status"] and header in headers
        pages.append(page)
        token = headers[header]
        if not token:
            break
    _, _, plain = call("GET", f"{sample.base}{RPC}/entities/recorder")
    _, _, none_yet = call("GET", f"{sample.base}{WEBHOOK}/entities/recorder?lastOperationTimeTo=2000-01-01T00:00:00Z")

    listed = [e for p in pages for e in p]
    assert all(len(p) <= 2 for p in pages) and len(pages) >= 2
    assert all(sorted(e) == sorted(spec["item_keys"]) for e in listed)
    assert all(sorted(e["entityId"]) == sorted(spec["entity_id_keys"]) for e in listed)
    assert [e["entityId"]["key"] for e in listed] == sorted(e["entityId"]["key"] for e in listed)
    mine = {e["entityId"]["key"]: e["state"] for e in listed if e["entityId"]["key"] in keys}
    assert mine == {k: [{"op": "record", "input": {"k": k}, "type": "dict"}] for k in keys}
    assert not spec["fetch_state_default"]
    assert all(e["state"] is None for e in plain) and {e["entityId"]["key"] for e in plain} >= set(keys)
    assert none_yet == []


# -- instances (extract: start, status, terminate, raise_event, list_instances) --------------------


def test_start_and_status_answer_with_the_handlers_codes_and_headers(sample: SampleHost):
    """HttpApiHandler.cs:1222-1238 (202, Location = statusQueryGetUri, Retry-After 10), 647-653 and
    680-689 (active: 202, Location = the request, Retry-After 5), 662-667 (ended: 200, no
    Location), 636-639 (404), 442-445 (unknown orchestrator: 400), 446-449 (an active duplicate:
    500), 785-807 (terminate 202/410/404), 978-1020 (raise 202/410/400/404)."""
    s, st, term, ev = EXTRACT["start"], EXTRACT["status"], EXTRACT["terminate"], EXTRACT["raise_event"]
    instance_id = uuid.uuid4().hex
    rpc = f"{sample.base}{RPC}/orchestrators"

    code, headers, links = post_json(f"{rpc}/pipeline/{instance_id}", json.dumps({"sleep": 30}))
    duplicate = post_json(f"{rpc}/pipeline/{instance_id}", "{}")
    unknown = post_json(f"{rpc}/no_such_orchestrator", "")
    bad = post_json(f"{rpc}/pipeline", "{oops")
    status_url = links["statusQueryGetUri"]
    wait_until(lambda: http("GET", status_url)[1]["runtimeStatus"] == "Running", 30, "running")
    active = call("GET", status_url)
    raise_url = links["sendEventPostUri"].replace("{eventName}", "Ping")
    not_json = post_json(raise_url, "{}", "text/plain")[0]
    raised = post_json(raise_url, "{}")[0]
    terminated = call("POST", links["terminatePostUri"].replace("{text}", "enough"))[0]
    wait_until(lambda: http("GET", status_url)[1]["runtimeStatus"] == "Terminated", 30, "terminated")
    ended = call("GET", status_url)
    missing = f"{sample.base}{WEBHOOK}/instances/{uuid.uuid4().hex}"

    assert code == s["status"] and headers["location"] == links[s["location"]]
    assert headers["retry-after"] == str(s["retry_after_seconds"])
    assert duplicate[0] == s["active_duplicate"]["status"]
    assert duplicate[2]["Message"] == s["active_duplicate"]["message"]
    assert unknown[0] == s["unknown_orchestrator"]["status"]
    assert unknown[2]["Message"] == s["unknown_orchestrator"]["message"]
    assert bad[0] == s["invalid_json"]["status"] and bad[2]["Message"] == s["invalid_json"]["message"]
    assert active[0] == st["active"]["status"] and active[1]["location"] == status_url
    assert active[1]["retry-after"] == str(st["active"]["retry_after_seconds"])
    assert (not_json, raised, terminated) == (ev["not_json_media_type"], ev["accepted"], term["accepted"])
    assert ended[0] == st["ended"]["status"] and "location" not in ended[1] and "retry-after" not in ended[1]
    assert call("POST", links["terminatePostUri"].replace("{text}", "again"))[0] == term["ended"]
    assert post_json(raise_url, "{}")[0] == ev["ended"]
    assert call("GET", missing)[0] == st["unknown"]["status"]
    assert call("POST", f"{missing}/terminate")[0] == term["unknown"]
    assert post_json(f"{missing}/raiseEvent/Ping", "{}")[0] == ev["unknown"]


def test_a_failed_instance_is_200_or_500_on_request(sample: SampleHost):
    """HttpApiHandler.cs:656-658: Failed is 200, or 500 with returnInternalServerErrorOnFailure=true."""
    failed = EXTRACT["status"]["failed"]
    done = start(sample, "failing")
    done.wait_done(timeout=30)
    url = done.links["statusQueryGetUri"]

    plain, on_request = call("GET", url), call("GET", f"{url}&returnInternalServerErrorOnFailure=true")

    assert plain[0] == failed["status"] and "location" not in plain[1]
    assert on_request[0] == failed["status_with_returnInternalServerErrorOnFailure"]


@pytest.mark.parametrize("base", [WEBHOOK, RPC])
def test_the_last_page_of_instances_carries_an_empty_continuation_header(sample: SampleHost, base: str):
    """HttpApiHandler.cs:507-509: the header is added on every page, with the provider's token,
    which is null (an empty header) when no page follows."""
    spec = EXTRACT["continuation_header"]
    prefix = f"nothing-{uuid.uuid4().hex}"

    status, headers, body = call("GET", f"{sample.base}{base}/instances?instanceIdPrefix={prefix}")

    assert status == EXTRACT["list_instances"]["status"] and body == []
    assert spec["sent_on_every_page"] and headers[spec["name"]] == spec["last_page_value"]


def test_purge_answers_like_the_handler(sample: SampleHost):
    """HttpApiHandler.cs:554-567 (one instance: 404 unknown, 200 with instancesDeleted) and 569-596
    (by filter: 400 without createdTimeFrom, 404 when nothing matched, 200)."""
    one, by_filter = EXTRACT["purge_one"], EXTRACT["purge_by_filter"]
    job = start(sample, "failing")
    job.wait_done(timeout=30)
    instances = f"{sample.base}{WEBHOOK}/instances"

    purged = call("DELETE", job.links["purgeHistoryDeleteUri"])
    again = call("DELETE", job.links["purgeHistoryDeleteUri"])
    no_from = call("DELETE", f"{instances}?createdTimeTo=2001-01-01T00:00:00Z")
    nothing = call("DELETE", f"{instances}?createdTimeFrom=1999-01-01T00:00:00Z&createdTimeTo=1999-01-02T00:00:00Z")

    assert (purged[0], purged[2]) == (one["purged"], {"instancesDeleted": 1})
    assert again[0] == one["unknown"]
    assert no_from[0] == by_filter["no_created_time_from"]
    assert nothing[0] == by_filter["nothing_matched"]
