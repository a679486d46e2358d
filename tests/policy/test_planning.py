"""Plans built from submissions and settings: every policy value the orchestrators follow."""

from __future__ import annotations

from videojob.contract.wire import BatchPlan, CostRates, DownloadRequest, JobPlan
from videojob.domain.planning import plan_batch, plan_job, plan_submission
from videojob.domain.request_parsing import BatchSubmission, PlaylistSubmission, SingleSubmission
from videojob.domain.settings import load_settings

VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
VIDEO2 = "https://youtu.be/9bZkp7q19f0"
PLAYLIST = "https://www.youtube.com/playlist?list=PL1"
HOOK = "https://hooks.example.com/x"

SETTINGS_ENV = {
    "CONTAINER_BACKEND": "local",
    "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
    "CALLBACK_SIGNING_KEY": "c" * 40,
    "OUTPUT_CONNECTION_STRING": "UseDevelopmentStorage=true",
    "JOB_DEADLINE_SECONDS": "5400",
    "HEARTBEAT_TIMEOUT_SECONDS": "120",
    "PROVISION_MAX_ATTEMPTS": "6",
    "CLEANUP_BACKOFF_SECONDS": "12",
    "FAILED_GROUP_POLICY": "delete",
    "JOB_MAX_ATTEMPTS": "4",
    "JOB_RETRY_BACKOFF_SECONDS": "45",
    "WORKER_CPU": "2",
    "WORKER_MEMORY_GB": "4",
    "SHARE_LINK_HOURS": "48",
    "ACI_PRICE_PER_VCPU_SECOND": "0.00001",
    "ACI_PRICE_PER_GB_SECOND": "0.000002",
    "COST_CURRENCY": "eur",
    "MAX_PARALLEL_JOBS": "5",
    "MAX_RUNNING_JOBS": "7",
    "ALLOWED_HOSTS": "youtube.com,.youtube.com,youtu.be",
    "ALLOW_PRIVATE_ADDRESSES": "true",
}
SETTINGS = load_settings(environ=SETTINGS_ENV)


def test_a_job_plan_takes_every_policy_value_from_settings():
    plan = plan_job(DownloadRequest(VIDEO, "audio", notify_url=HOOK), SETTINGS)

    assert plan == JobPlan(
        DownloadRequest(VIDEO, "audio", notify_url=HOOK),
        deadline_seconds=5400,
        heartbeat_timeout_seconds=120,
        provision_max_attempts=6,
        cleanup_backoff_seconds=12,
        failed_group_policy="delete",
        max_attempts=4,
        retry_backoff_seconds=45,
        worker_cpu=2.0,
        worker_memory_gb=4.0,
        share_link_hours=48,
        cost_rates=CostRates(0.00001, 0.000002, "EUR"),
        output_container="downloads",  # a reported blob anywhere else is refused (issue 9)
        retry_bot_check=True,  # RETRY_BOT_CHECK's default: a bot check is worth a fresh group (issue 14)
        max_running_jobs=7,  # the global cap: the job queues for one of 7 slots (issue 13)
    )
    assert JobPlan.from_wire(plan.to_wire()) == plan


def test_the_retry_pause_defaults_to_thirty_seconds_and_follows_the_setting():
    base = {k: v for k, v in SETTINGS_ENV.items() if k != "JOB_RETRY_BACKOFF_SECONDS"}
    request = DownloadRequest(VIDEO)
    no_pause = load_settings(environ={**base, "JOB_RETRY_BACKOFF_SECONDS": "0"})

    assert plan_job(request, load_settings(environ=base)).retry_backoff_seconds == 30
    assert plan_job(request, no_pause).retry_backoff_seconds == 0
    # Every job of a batch and a playlist's items follow it too.
    batch = plan_batch(BatchSubmission((request, DownloadRequest(VIDEO2))), SETTINGS)
    playlist = plan_batch(PlaylistSubmission(DownloadRequest(PLAYLIST), max_items=3), SETTINGS)
    assert [i.retry_backoff_seconds for i in batch.items] == [45, 45]
    assert playlist.item_template is not None and playlist.item_template.retry_backoff_seconds == 45


def test_a_requested_deadline_wins_over_the_default():
    assert plan_job(DownloadRequest(VIDEO, deadline_seconds=600), SETTINGS).deadline_seconds == 600


def test_a_batch_plans_one_job_per_url_and_notifies_once():
    requests = (DownloadRequest(VIDEO, max_height=480), DownloadRequest(VIDEO2, max_height=480))
    plan = plan_submission(BatchSubmission(requests, notify_url=HOOK), SETTINGS)

    assert isinstance(plan, BatchPlan)
    assert [i.request.url for i in plan.items] == [VIDEO, VIDEO2]
    assert all(i.request.notify_url is None and i.request.max_height == 480 for i in plan.items)
    assert all(i.max_attempts == 4 and i.share_link_hours == 48 for i in plan.items)
    assert plan.notify_url == HOOK
    assert plan.max_parallel == 5
    assert plan.playlist is None and plan.item_template is None
    assert plan.allowed_hosts == ("youtube.com", ".youtube.com", "youtu.be")
    assert plan.allow_private_addresses is True
    assert BatchPlan.from_wire(plan.to_wire()) == plan


def test_a_playlist_plans_a_list_job_and_an_item_template():
    plan = plan_batch(PlaylistSubmission(DownloadRequest(PLAYLIST, "audio"), max_items=7, notify_url=HOOK), SETTINGS)

    assert plan.items == ()
    assert plan.notify_url == HOOK
    assert plan.playlist is not None and plan.item_template is not None
    assert plan.playlist.mode == "list" and plan.playlist.max_items == 7
    assert plan.playlist.request.url == PLAYLIST
    assert plan.playlist.share_link_hours == 0  # a listing has no blob to share
    assert plan.item_template.mode == "download"
    assert plan.item_template.request == DownloadRequest(PLAYLIST, "audio")
    assert plan.item_template.share_link_hours == 48
    assert BatchPlan.from_wire(plan.to_wire()) == plan


def test_a_single_submission_plans_a_job():
    plan = plan_submission(SingleSubmission(DownloadRequest(VIDEO)), SETTINGS)

    assert isinstance(plan, JobPlan) and plan.request.url == VIDEO
