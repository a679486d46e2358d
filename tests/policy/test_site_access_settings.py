"""YouTube from a datacenter: the operator's cookies, proxy, extractor arguments and bot-check
retries, from the settings through the plan and the container spec to the worker's env."""

from __future__ import annotations

import optparse
from datetime import UTC, datetime, timedelta

import pytest
import yt_dlp

from videojob.contract import container_env as E
from videojob.contract.container_env import WorkerEnvError, parse_worker_env
from videojob.contract.staging import UploadGrant
from videojob.contract.wire import DownloadRequest, ErrorCode, JobError, JobPlan
from videojob.domain.container_spec import SECRETS_MOUNT_PATH, build_container_spec
from videojob.domain.orchestration import is_retryable
from videojob.domain.planning import plan_job
from videojob.domain.settings import SECRET_SETTINGS, SettingsError, load_settings, parse_extractor_args

BASE = {
    "CONTAINER_BACKEND": "local",
    "OUTPUT_CONNECTION_STRING": "UseDevelopmentStorage=true",
    "CALLBACK_BASE_URL": "http://127.0.0.1:7071",
    "CALLBACK_SIGNING_KEY": "site-access-signing-key-0123456789abcdef",
}
COOKIES = "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t4102444800\tSID\tsecret-cookie-value-42"
PROXY = "socks5://user:proxy-secret-99@proxy.example:1080"
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def settings(**extra: str):
    return load_settings(environ={**BASE, **extra})


GRANT = UploadGrant(
    record_url="http://127.0.0.1:10000/devstoreaccount1/staging/job-1/a1/record.json?sp=w&sig=s",
    media_url="http://127.0.0.1:10000/devstoreaccount1/staging/job-1/a1/media?sp=w&sig=s",
)


def spec_of(**extra: str):
    return build_container_spec(
        DownloadRequest(url="https://youtu.be/x"), settings(**extra), "job-1", CREATED, CREATED + timedelta(hours=1),
        upload=GRANT,
    )


def test_without_the_settings_nothing_changes():
    s = settings()
    assert (s.youtube_cookies, s.worker_proxy_url, s.extractor_args, s.retry_bot_check) == (None, None, (), True)
    spec = spec_of()
    assert spec.secret_files == ()
    env = spec.environment()
    assert not {E.COOKIES_FILE, E.PROXY_URL, E.YTDLP_EXTRACTOR_ARGS} & set(env)


def test_cookies_and_proxy_are_secret_settings_kept_out_of_reprs():
    assert {"YOUTUBE_COOKIES", "WORKER_PROXY_URL"} <= SECRET_SETTINGS
    s = settings(YOUTUBE_COOKIES=COOKIES, WORKER_PROXY_URL=PROXY)
    spec = spec_of(YOUTUBE_COOKIES=COOKIES, WORKER_PROXY_URL=PROXY)
    for text in (repr(s), repr(spec), repr(spec.secret_files)):
        assert "secret-cookie-value-42" not in text and "proxy-secret-99" not in text


def test_the_spec_carries_cookies_as_a_file_the_proxy_as_a_secure_value_and_extractor_args_plainly():
    spec = spec_of(
        YOUTUBE_COOKIES=COOKIES, WORKER_PROXY_URL=PROXY, YTDLP_EXTRACTOR_ARGS="youtube:player_client=default,mweb"
    )
    (secret,) = spec.secret_files
    assert (secret.name, secret.env_name, secret.content) == ("cookies.txt", E.COOKIES_FILE, COOKIES)
    assert dict(spec.secure_env)[E.PROXY_URL] == PROXY
    plain = dict(spec.env)
    assert plain[E.YTDLP_EXTRACTOR_ARGS] == "youtube:player_client=default,mweb"
    assert E.PROXY_URL not in plain and E.COOKIES_FILE not in plain
    assert all("secret-cookie-value-42" not in v for _, v in spec.env + spec.secure_env)
    # The worker finds the file where the backend put it.
    assert spec.environment()[E.COOKIES_FILE] == f"{SECRETS_MOUNT_PATH}/cookies.txt"
    assert spec.environment("/tmp/group/secrets")[E.COOKIES_FILE] == "/tmp/group/secrets/cookies.txt"
    worker = parse_worker_env(spec.environment())
    assert worker.cookies_file == f"{SECRETS_MOUNT_PATH}/cookies.txt"
    assert worker.proxy_url == PROXY
    assert worker.extractor_args == ("youtube:player_client=default,mweb",)
    assert "proxy-secret-99" not in repr(worker)


def test_a_list_job_gets_the_same_access():
    s = settings(YOUTUBE_COOKIES=COOKIES, WORKER_PROXY_URL=PROXY)
    spec = build_container_spec(
        DownloadRequest(url="https://youtube.com/playlist?list=x"), s, "job-1", CREATED,
        CREATED + timedelta(hours=1), mode="list", max_items=5,
    )  # fmt: skip
    assert spec.secret_files and dict(spec.secure_env)[E.PROXY_URL] == PROXY


@pytest.mark.parametrize(
    "value",
    [
        "http://proxy:3128",
        "https://user:pa%40ss@proxy.example:8443",
        "socks5://10.0.0.5:1080",
        "http://[2001:db8::1]:3128/",
    ],
)
def test_proxy_urls_of_the_three_schemes_are_accepted(value: str):
    assert settings(WORKER_PROXY_URL=value).worker_proxy_url == value.rstrip("/")


@pytest.mark.parametrize(
    "value",
    [
        "ftp://proxy:21",
        "socks4://proxy:1080",
        "proxy.example:3128",
        "http://",
        "http://proxy:3128/path",
        "http://proxy:3128?x=1",
        "http://user:secret-in-url@proxy:99999",
        "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/worker-proxy-url/1)",
    ],
)
def test_a_malformed_proxy_url_stops_start_up_naming_the_setting_not_the_value(value: str):
    with pytest.raises(SettingsError) as e:
        settings(WORKER_PROXY_URL=value)
    assert "WORKER_PROXY_URL" in str(e.value)
    assert "secret-in-url" not in str(e.value)


def test_unresolved_or_oversized_cookies_stop_start_up():
    with pytest.raises(SettingsError, match="YOUTUBE_COOKIES is an unresolved Key Vault reference"):
        settings(YOUTUBE_COOKIES="@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/youtube-cookies/1)")
    with pytest.raises(SettingsError, match="YOUTUBE_COOKIES must be at most"):
        settings(YOUTUBE_COOKIES=COOKIES + "\n" + "x" * 30_000)
    assert settings(YOUTUBE_COOKIES="  ").youtube_cookies is None  # azd's empty secret


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("youtube:player_client=default,mweb", {"youtube": {"player_client": ["default", "mweb"]}}),
        (
            "youtube:player_client=mweb;po_token=mweb.gvs+XYZ youtubepot-bgutilhttp:base_url=http://127.0.0.1:4416",
            {
                "youtube": {"player_client": ["mweb"], "po_token": ["mweb.gvs+XYZ"]},
                "youtubepot-bgutilhttp": {"base_url": ["http://127.0.0.1:4416"]},
            },
        ),
        ("YouTube:Player-Client=tv", {"youtube": {"player_client": ["tv"]}}),
    ],
)
def test_extractor_args_mean_what_yt_dlp_makes_of_them(value: str, expected: dict):
    groups = settings(YTDLP_EXTRACTOR_ARGS=value).extractor_args
    argv = [a for g in groups for a in ("--extractor-args", g)]
    assert yt_dlp.parse_options(argv).ydl_opts["extractor_args"] == expected


@pytest.mark.parametrize(
    "value", ["youtube", "youtube:", "player_client=mweb", "youtube:player_client", "youtube:a=b;c", ":a=b", "you tube"]
)
def test_extractor_args_syntax_errors_stop_start_up_naming_the_setting(value: str):
    with pytest.raises(SettingsError, match="YTDLP_EXTRACTOR_ARGS"):
        settings(YTDLP_EXTRACTOR_ARGS=value)


def test_the_worker_refuses_a_malformed_variable_by_name():
    env = dict(spec_of().environment())
    with pytest.raises(WorkerEnvError, match=f"^{E.YTDLP_EXTRACTOR_ARGS} is malformed$"):
        parse_worker_env({**env, E.YTDLP_EXTRACTOR_ARGS: "youtube"})
    with pytest.raises(WorkerEnvError, match=f"^{E.PROXY_URL} is malformed$"):
        parse_worker_env({**env, E.PROXY_URL: "ftp://user:secret@x"})


def test_every_group_yt_dlp_refuses_is_refused_by_the_setting():
    # yt-dlp's parser refuses a group without `IE_KEY:`; ours refuses those and more.
    for value in ["youtube", "player_client=mweb", ":a=b"]:
        with pytest.raises(optparse.OptParseError):
            yt_dlp.parse_options(["--extractor-args", value])
        with pytest.raises(SettingsError):
            parse_extractor_args(value)


# ---- bot_check retries: the flag travels in the plan --------------------------------------------


BOT = JobError(ErrorCode.BOT_CHECK, "Sign in to confirm you're not a bot")


@pytest.mark.parametrize(("raw", "retried"), [(None, True), ("true", True), ("false", False)])
def test_retry_bot_check_travels_in_the_plan_and_decides_the_retry(raw: str | None, retried: bool):
    extra = {} if raw is None else {"RETRY_BOT_CHECK": raw}
    plan = plan_job(DownloadRequest(url="https://youtu.be/x"), settings(**extra))
    wire = plan.to_wire()
    assert wire["retryBotCheck"] is retried
    again = JobPlan.from_wire(wire)
    assert again.retry_bot_check is retried
    assert is_retryable(BOT, again.retry_bot_check) is retried


def test_a_plan_from_before_the_flag_does_not_retry_a_bot_check():
    wire = plan_job(DownloadRequest(url="https://youtu.be/x"), settings()).to_wire()
    del wire["retryBotCheck"]
    assert JobPlan.from_wire(wire).retry_bot_check is False
    assert is_retryable(BOT) is False


def test_other_unretryable_codes_stay_unretried_with_the_flag():
    for code in (ErrorCode.LOGIN_REQUIRED, ErrorCode.UNAVAILABLE, ErrorCode.INVALID_COOKIES):
        assert is_retryable(JobError(code, "x"), True) is False
