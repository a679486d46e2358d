"""AUTH_MODE=entra (issue 21): two users and an operator through every route, the principal headers
as App Service Authentication sends them (shape: tests/api/data/client_principal.md), the
per-user limit, and what happens when the platform's authentication is not in front.

The functions run as the Python worker runs them, against the devhost's Durable HTTP API (the
stand-in) and a real Azurite (job index table, blobs).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

import api
from tests.api.conftest import APP_ORIGIN, TEST_ENV, Answer
from tests.support.durable_standin import DurableStandIn, IndexedFunctions, client_binding_value, http_request, run
from tests.support.services import Azurite
from videojob import bootstrap
from videojob.adapters.job_index_table import TableJobIndex
from videojob.domain.idempotency import KIND_CLIENT_KEY, instance_id_for
from videojob.domain.job_index import DEFAULT_OWNER, TIME_ROWS_END
from videojob.domain.settings import Settings, load_settings

ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"
OPERATOR = "33333333-3333-4333-8333-333333333333"
VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
ROLE_TYPE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"


def principal_doc(object_id: str, name: str, roles: tuple[str, ...] = (), role_claim: str = "roles") -> dict:
    """The decoded `X-MS-CLIENT-PRINCIPAL` in the documented shape (auth_typ, claims, name_typ, role_typ)."""
    claims = [{"typ": OBJECT_ID_CLAIM, "val": object_id}, {"typ": "name", "val": name}]
    claims += [{"typ": role_claim, "val": role} for role in roles]
    return {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": ROLE_TYPE}


def encode(doc: Any) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def as_user(object_id: str, name: str, roles: tuple[str, ...] = ()) -> dict[str, str]:
    # Title case, as a framework may present them (the docs' note): header names are case-insensitive.
    return {
        "X-MS-CLIENT-PRINCIPAL-ID": object_id,
        "X-MS-CLIENT-PRINCIPAL-NAME": name,
        "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
        "X-MS-CLIENT-PRINCIPAL": encode(principal_doc(object_id, name, roles)),
    }


ALICE_H, BOB_H = as_user(ALICE, "alice@example.com"), as_user(BOB, "bob@example.com")
OPERATOR_H = as_user(OPERATOR, "op@example.com", ("Downloads.Admin",))


def entra_env(azurite: Azurite, **extra: str) -> dict[str, str]:
    return {**TEST_ENV, "AUTH_MODE": "entra", "WEBSITE_AUTH_ENABLED": "True",
            "OUTPUT_CONNECTION_STRING": azurite.connection_string, "OUTPUT_CONTAINER": f"out{secrets.token_hex(4)}",
            "STAGING_CONTAINER": f"stage{secrets.token_hex(4)}", **extra}


@dataclasses.dataclass
class Users:
    functions: IndexedFunctions
    standin: DurableStandIn
    index: TableJobIndex
    settings: Settings

    def call(self, function_name: str, path: str, headers: dict[str, str], *, method: str = "POST",
             body: Any = b"", route_params: dict[str, str] | None = None) -> Answer:
        if isinstance(body, dict):
            body = json.dumps(body)
            headers = {**headers, "Content-Type": "application/json"}
        req = http_request(method, f"{APP_ORIGIN}/api/{path}", body=body, headers=headers, route_params=route_params)
        user_function = self.functions.user_function(function_name)
        if function_name in ("who_am_i", "web_app"):  # no durable client binding
            resp = user_function(req=req)
        else:
            resp = run(user_function(req=req, client=client_binding_value(self.standin.binding_json())))
        return Answer(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.get_body(),
                      resp.mimetype)

    def submit(self, headers: dict[str, str], body: dict) -> Answer:
        return self.call("start_download", "downloads", headers, body=body)

    def status(self, headers: dict[str, str], job: str) -> Answer:
        return self.call("job_status", f"downloads/{job}", headers, method="GET", route_params={"id": job})

    def delete(self, headers: dict[str, str], job: str) -> Answer:
        return self.call("delete_job", f"downloads/{job}", headers, method="DELETE", route_params={"id": job})

    def cancel(self, headers: dict[str, str], job: str) -> Answer:
        return self.call("cancel_download", f"downloads/{job}/cancel", headers, route_params={"id": job})

    def jobs(self, headers: dict[str, str], query: str = "") -> Answer:
        return self.call("list_downloads", f"downloads{query}", headers, method="GET")

    def listed(self, headers: dict[str, str], query: str = "") -> list[str]:
        answer = self.jobs(headers, query)
        assert answer.status == 200, answer.body
        return [j["id"] for j in answer.json["jobs"]]

    def finish(self, job: str, runtime_status: str = "Completed", output: Any = None) -> None:
        inst = self.standin.store.get(job)
        self.standin.store.put(dataclasses.replace(inst, status=runtime_status, output=output))


@pytest.fixture(scope="module")
def functions() -> IndexedFunctions:
    return IndexedFunctions(api.bp, api.job_routes_bp)


def users_fixture(functions: IndexedFunctions, job_index: TableJobIndex, env: dict[str, str]) -> Iterator[Users]:
    settings = load_settings(environ=env)
    bootstrap.override(settings=settings, job_index=job_index)
    try:
        with DurableStandIn() as standin:
            yield Users(functions, standin, job_index, settings)
    finally:
        bootstrap.reset()


@pytest.fixture
def users(functions: IndexedFunctions, job_index: TableJobIndex, azurite: Azurite) -> Iterator[Users]:
    yield from users_fixture(functions, job_index, entra_env(azurite))


def urls_in(body: Any) -> list[str]:
    return [v for v in body.values() if isinstance(v, str) and v.startswith("http")]


# --- submit, poll, list, cancel, delete -------------------------------------------------------------

def test_a_submit_answer_links_to_the_apps_own_routes_and_carries_no_system_key(users: Users):
    answer = users.submit(ALICE_H, {"url": VIDEO})

    assert answer.status == 202, answer.body
    job = answer.json["id"]
    base = f"{APP_ORIGIN}/api/downloads/{job}"
    assert answer.json == {"id": job, "statusQueryGetUri": base, "terminatePostUri": f"{base}/cancel",
                           "purgeHistoryDeleteUri": base}
    assert answer.headers["location"] == base
    assert not any("code=" in u or "webhooks" in u for u in urls_in(answer.json))
    started = users.standin.started
    assert [s.instance_id for s in started] == [job]
    assert json.loads(json.dumps(started[0].input))["owner"] == ALICE


def test_polling_status_query_get_uri_answers_the_durable_status_shape(users: Users):
    job = users.submit(ALICE_H, {"url": VIDEO}).json["id"]

    running = users.status(ALICE_H, job)
    assert running.status == 202
    assert {"runtimeStatus", "customStatus", "output", "createdTime", "lastUpdatedTime"} <= set(running.json)
    assert running.headers["location"] == f"{APP_ORIGIN}/api/downloads/{job}"
    assert int(running.headers["retry-after"]) > 0
    assert "input" not in running.json

    share = {"state": "succeeded", "shareUrl": "https://account.blob.core.windows.net/downloads/x?sig=abc"}
    users.finish(job, output=share)
    done = users.status(ALICE_H, job)
    assert (done.status, done.json["runtimeStatus"], done.json["output"]) == (200, "Completed", share)


def test_someone_elses_job_is_404_on_every_route_and_an_operator_sees_it(users: Users):
    job = users.submit(ALICE_H, {"url": VIDEO}).json["id"]
    missing = "no-such-job"

    for answer in (users.status(BOB_H, job), users.cancel(BOB_H, job), users.delete(BOB_H, job)):
        assert (answer.status, answer.error_code) == (404, "not_found")
    # ...exactly as a job that does not exist: nothing tells the two apart.
    assert users.status(BOB_H, job).json["error"]["message"].replace(job, missing) == \
        users.status(BOB_H, missing).json["error"]["message"]
    assert users.standin.raised_events == []

    assert users.status(OPERATOR_H, job).status == 202
    assert users.status(ALICE_H, job).status == 202


def test_each_user_lists_only_their_own_jobs_and_an_operator_names_whose(users: Users):
    alice_job = users.submit(ALICE_H, {"url": VIDEO}).json["id"]
    bob_job = users.submit(BOB_H, {"url": VIDEO}).json["id"]

    assert users.listed(ALICE_H) == [alice_job]
    assert users.listed(BOB_H) == [bob_job]
    assert users.listed(OPERATOR_H) == []
    assert users.listed(OPERATOR_H, f"?owner={ALICE}") == [alice_job]
    assert users.listed(OPERATOR_H, f"?owner={BOB.upper()}") == [bob_job]
    listed = users.jobs(ALICE_H).json["jobs"][0]
    assert listed["statusQueryGetUri"] == f"{APP_ORIGIN}/api/downloads/{alice_job}"

    refused = users.jobs(BOB_H, f"?owner={ALICE}")
    assert (refused.status, refused.error_code) == (400, "invalid_option")
    assert users.listed(BOB_H, f"?owner={BOB}") == [bob_job]


def test_cancel_then_delete_removes_history_blobs_and_list_row(users: Users, azurite: Azurite):
    job = users.submit(ALICE_H, {"url": VIDEO}).json["id"]
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    out = service.get_container_client(users.settings.output_container)
    out.create_container()
    out.upload_blob(f"{job}/video.mp4", b"media")
    out.upload_blob("someone-else/video.mp4", b"other")

    running = users.delete(ALICE_H, job)
    assert (running.status, running.error_code) == (409, "job_running")

    cancelled = users.cancel(ALICE_H, job)
    assert cancelled.status == 202
    assert cancelled.json["statusQueryGetUri"] == f"{APP_ORIGIN}/api/downloads/{job}"
    assert [e.instance_id for e in users.standin.raised_events] == [job]
    users.finish(job, "Failed")

    deleted = users.delete(ALICE_H, job)
    assert (deleted.status, deleted.json) == (200, {"instancesDeleted": 1, "blobsDeleted": 1})
    assert users.status(ALICE_H, job).status == 404
    assert users.listed(ALICE_H) == []
    assert [b.name for b in out.list_blobs()] == ["someone-else/video.mp4"]


def test_an_operator_may_cancel_and_delete_anyones_job(users: Users):
    job = users.submit(BOB_H, {"url": VIDEO}).json["id"]
    assert users.cancel(OPERATOR_H, job).status == 202
    users.finish(job, "Failed")
    assert users.delete(OPERATOR_H, job).status == 200
    assert users.listed(BOB_H) == []


# --- batches, idempotency keys ------------------------------------------------------------------------

def test_batch_items_carry_the_owner_and_are_404_to_others(users: Users):
    batch = users.submit(ALICE_H, {"urls": [VIDEO, VIDEO + "1"]}).json["id"]
    plan = users.standin.started[0].input
    assert plan["owner"] == ALICE and [i["owner"] for i in plan["items"]] == [ALICE, ALICE]

    item = f"{batch}-000"  # as download_batch would start it: the item's own plan as its input
    users.standin.add_instance(item, "Running", input=plan["items"][0])
    assert users.status(BOB_H, item).status == 404
    assert users.cancel(BOB_H, item).status == 404
    assert users.status(ALICE_H, item).status == 202


def test_a_playlist_plan_names_its_owner_for_the_listing_and_every_item(users: Users):
    users.submit(BOB_H, {"url": "https://www.youtube.com/playlist?list=PL1", "playlist": True})
    plan = users.standin.started[0].input
    assert (plan["owner"], plan["playlist"]["owner"], plan["itemTemplate"]["owner"]) == (BOB, BOB, BOB)


def test_idempotency_keys_are_scoped_per_owner(users: Users):
    key = {"Idempotency-Key": "my-key-1"}
    alice_first = users.submit({**ALICE_H, **key}, {"url": VIDEO})
    bob_first = users.submit({**BOB_H, **key}, {"url": VIDEO})
    alice_again = users.submit({**ALICE_H, **key}, {"url": VIDEO})

    assert alice_first.json["id"] != bob_first.json["id"]
    assert alice_again.json["id"] == alice_first.json["id"]
    assert alice_again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in bob_first.headers
    assert len(users.standin.started) == 2
    # The key-mode id of the same key is neither (key mode keeps its ids).
    assert instance_id_for(KIND_CLIENT_KEY, "my-key-1") not in {alice_first.json["id"], bob_first.json["id"]}


# --- forged, malformed, or no platform in front ---------------------------------------------------------

FORGED = {
    "nothing": {},
    "id without principal": {"X-MS-CLIENT-PRINCIPAL-ID": ALICE},
    "principal without id": {"X-MS-CLIENT-PRINCIPAL": encode(principal_doc(ALICE, "a"))},
    "id not an object id": {**ALICE_H, "X-MS-CLIENT-PRINCIPAL-ID": "alice"},
    "principal not base64": {**ALICE_H, "X-MS-CLIENT-PRINCIPAL": "{not base64}"},
    "principal not json": {**ALICE_H, "X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"\xff\xfe").decode()},
    "principal without claims": {**ALICE_H, "X-MS-CLIENT-PRINCIPAL": encode({"auth_typ": "aad"})},
    "claim not a string": {**ALICE_H, "X-MS-CLIENT-PRINCIPAL": encode(
        {"auth_typ": "aad", "claims": [{"typ": "roles", "val": 1}]})},
    "principal of another user": {**ALICE_H, "X-MS-CLIENT-PRINCIPAL": encode(principal_doc(BOB, "b"))},
    "operator role on someone else's id": {**BOB_H, "X-MS-CLIENT-PRINCIPAL": encode(
        principal_doc(OPERATOR, "op", ("Downloads.Admin",)))},
}


@pytest.mark.parametrize("headers", FORGED.values(), ids=FORGED.keys())
def test_a_missing_forged_or_malformed_principal_is_401_and_starts_nothing(users: Users, headers: dict):
    job = users.submit(ALICE_H, {"url": VIDEO}).json["id"]
    users.standin.reset_calls()

    answers = [users.submit(headers, {"url": VIDEO}), users.status(headers, job), users.jobs(headers),
               users.cancel(headers, job), users.delete(headers, job)]

    assert [(a.status, a.error_code) for a in answers] == [(401, "unauthorized")] * 5
    assert users.standin.started == [] and users.standin.raised_events == []


def test_app_roles_are_read_from_roles_and_from_the_role_claim_type(users: Users):
    job = users.submit(ALICE_H, {"url": VIDEO}).json["id"]
    long_form = {**OPERATOR_H, "X-MS-CLIENT-PRINCIPAL": encode(
        principal_doc(OPERATOR, "op", ("Downloads.Admin",), role_claim=ROLE_TYPE))}
    other_role = as_user(OPERATOR, "op", ("Downloads.Reader",))

    assert users.status(long_form, job).status == 202
    assert users.status(other_role, job).status == 404


@pytest.fixture
def no_platform(functions: IndexedFunctions, job_index: TableJobIndex, azurite: Azurite) -> Iterator[Users]:
    env = entra_env(azurite)
    del env["WEBSITE_AUTH_ENABLED"]
    yield from users_fixture(functions, job_index, env)


def test_entra_mode_without_the_platforms_authentication_refuses_every_request(no_platform: Users):
    answers = [no_platform.submit(ALICE_H, {"url": VIDEO}), no_platform.jobs(OPERATOR_H),
               no_platform.status(ALICE_H, "x"), no_platform.cancel(ALICE_H, "x"), no_platform.delete(ALICE_H, "x")]

    assert {(a.status, a.error_code) for a in answers} == {(500, "auth_not_configured")}
    assert "WEBSITE_AUTH_ENABLED" in answers[0].json["error"]["message"]
    assert no_platform.standin.started == []


@pytest.fixture
def key_mode(functions: IndexedFunctions, job_index: TableJobIndex, azurite: Azurite) -> Iterator[Users]:
    env = {k: v for k, v in entra_env(azurite).items() if k not in ("AUTH_MODE", "WEBSITE_AUTH_ENABLED")}
    yield from users_fixture(functions, job_index, env)


def test_key_mode_ignores_principal_headers(key_mode: Users):
    answer = key_mode.submit(BOB_H, {"url": VIDEO})

    assert answer.status == 202
    assert "code=" in answer.json["statusQueryGetUri"]  # today's answer: the Durable webhooks
    assert "owner" not in key_mode.standin.started[0].input
    rows = key_mode.index.rows(DEFAULT_OWNER, after=None, before=TIME_ROWS_END, limit=10).rows
    assert [r.instance_id for r in rows] == [answer.json["id"]]
    assert key_mode.listed(ALICE_H) == [answer.json["id"]]  # everyone's, whoever the headers say


# --- MAX_ACTIVE_JOBS_PER_USER ------------------------------------------------------------------------------

@pytest.fixture
def limited(functions: IndexedFunctions, job_index: TableJobIndex, azurite: Azurite) -> Iterator[Users]:
    yield from users_fixture(functions, job_index, entra_env(azurite, MAX_ACTIVE_JOBS_PER_USER="3"))


def test_over_the_per_user_limit_a_submit_is_429_and_nothing_starts(limited: Users):
    batch = limited.submit(ALICE_H, {"urls": [VIDEO, VIDEO + "1"]}).json["id"]  # 2 items
    single = limited.submit(ALICE_H, {"url": VIDEO}).json["id"]  # 3 active: at the limit
    started = len(limited.standin.started)

    refused = limited.submit(ALICE_H, {"url": VIDEO + "2"})
    assert (refused.status, refused.error_code) == (429, "too_many_jobs")
    assert int(refused.headers["retry-after"]) > 0
    assert len(limited.standin.started) == started
    assert limited.listed(ALICE_H) == [single, batch]

    assert limited.submit(BOB_H, {"url": VIDEO}).status == 202  # the limit is per user

    limited.finish(single)  # one finished: one more fits, a batch of two still does not
    assert limited.submit(ALICE_H, {"urls": [VIDEO, VIDEO + "3"]}).status == 429
    assert limited.submit(ALICE_H, {"url": VIDEO + "4"}).status == 202


def test_a_batch_counts_its_unfinished_items_once_it_reports_them(limited: Users):
    batch = limited.submit(ALICE_H, {"urls": [VIDEO, VIDEO + "1", VIDEO + "2"]}).json["id"]
    assert limited.submit(ALICE_H, {"url": VIDEO}).status == 429

    inst = limited.standin.store.get(batch)
    counts = {"total": 3, "running": 1, "succeeded": 2, "failed": 0, "pending": 0}
    limited.standin.store.put(dataclasses.replace(inst, custom_status={"phase": "running", "counts": counts}))
    assert limited.submit(ALICE_H, {"url": VIDEO}).status == 202


def test_a_replayed_submit_is_answered_even_at_the_limit(limited: Users):
    key = {**ALICE_H, "Idempotency-Key": "k"}
    first = limited.submit(key, {"urls": [VIDEO, VIDEO + "1", VIDEO + "2"]})
    again = limited.submit(key, {"urls": [VIDEO, VIDEO + "1", VIDEO + "2"]})
    assert (again.status, again.json["id"]) == (202, first.json["id"])
    assert again.headers.get("idempotent-replayed") == "true"


# --- the host's view --------------------------------------------------------------------------------------

def test_in_entra_mode_the_host_asks_no_function_key_on_any_route():
    """App Service Authentication is in front; the app checks the principal itself."""
    script = (
        "import json, function_app\n"
        "print(json.dumps({f.get_function_name(): b.get('authLevel') for f in function_app.app.get_functions()"
        " for b in json.loads(f.get_function_json())['bindings'] if b['type'] == 'httpTrigger'}))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "AUTH_MODE": "entra"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True,
                         timeout=120)
    levels = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"start_download", "list_downloads", "cancel_download", "job_status", "delete_job"} <= set(levels)
    assert {level.lower() for level in levels.values()} == {"anonymous"}


# --- what the page asks: who am I, and which mode it runs in ------------------------------------------

def test_me_names_the_signed_in_caller_and_an_operator(users: Users):
    alice = users.call("who_am_i", "me", ALICE_H, method="GET")
    operator = users.call("who_am_i", "me", OPERATOR_H, method="GET")
    nobody = users.call("who_am_i", "me", {}, method="GET")

    assert alice.json == {"authMode": "entra", "id": ALICE, "name": "alice@example.com", "operator": False}
    assert operator.json["operator"] is True
    assert (nobody.status, nobody.error_code) == (401, "unauthorized")


def test_the_page_says_which_mode_the_app_runs_in(users: Users, monkeypatch: pytest.MonkeyPatch):
    def served(mode: str) -> str:
        monkeypatch.setenv("AUTH_MODE", mode)
        return users.call("web_app", "app", {}, method="GET").body.decode()

    assert '<meta name="auth-mode" content="entra">' in served("entra")
    assert '<meta name="auth-mode" content="key">' in served("key")


def test_a_completion_webhook_belongs_to_its_submitters_job(users: Users):
    alice = users.submit(ALICE_H, {"url": VIDEO, "notifyUrl": "https://hooks.example/alice"}).json["id"]
    bob = users.submit(BOB_H, {"urls": [VIDEO], "notifyUrl": "https://hooks.example/bob"}).json["id"]

    plans = {s.instance_id: s.input for s in users.standin.started}
    assert (plans[alice]["owner"], plans[alice]["request"]["notifyUrl"]) == (ALICE, "https://hooks.example/alice")
    assert (plans[bob]["owner"], plans[bob]["notifyUrl"]) == (BOB, "https://hooks.example/bob")
    assert users.status(BOB_H, alice).status == 404  # nor can bob read alice's job (and its share link)


@pytest.mark.parametrize(("raw", "enabled"), [("True", True), ("true", True), ("1", True), (None, False),
                                              ("False", False), ("", False), ("maybe", False)])
def test_the_platform_flag_is_read_leniently_and_never_stops_the_app(raw: str | None, enabled: bool):
    env = {**TEST_ENV, "AUTH_MODE": "entra", **({"WEBSITE_AUTH_ENABLED": raw} if raw is not None else {})}
    settings = load_settings(environ=env)
    assert (settings.auth_mode, settings.platform_auth_enabled) == ("entra", enabled)


def test_deleting_a_finished_batch_removes_its_items_history_and_files(users: Users, azurite: Azurite):
    batch = users.submit(ALICE_H, {"urls": [VIDEO, VIDEO + "1"]}).json["id"]
    plan = users.standin.started[0].input
    items = [f"{batch}-000", f"{batch}-001"]
    for item, item_plan in zip(items, plan["items"], strict=True):
        users.standin.add_instance(item, "Completed", input=item_plan)
    inst = users.standin.store.get(batch)
    counts = {"total": 2, "running": 0, "succeeded": 2, "failed": 0, "pending": 0}
    users.standin.store.put(dataclasses.replace(inst, status="Completed", custom_status={"phase": "done",
                                                                                         "counts": counts}))
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    out = service.get_container_client(users.settings.output_container)
    out.create_container()
    for item in items:
        out.upload_blob(f"{item}/clip.mp4", b"media")
    staging = service.get_container_client(users.settings.staging_container)
    staging.create_container()
    staging.upload_blob(f"{items[0]}/record.json", b"{}")

    assert users.delete(BOB_H, batch).status == 404
    deleted = users.delete(ALICE_H, batch)

    assert (deleted.status, deleted.json) == (200, {"instancesDeleted": 3, "blobsDeleted": 3})
    assert [users.status(ALICE_H, i).status for i in (batch, *items)] == [404, 404, 404]
    assert list(out.list_blobs()) == [] and list(staging.list_blobs()) == []
