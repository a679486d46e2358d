"""Settings: typed, validated, named in every error, secrets never echoed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from videojob.domain.settings import SETTING_NAMES, SettingsError, load_settings

SECRET = "s3cr3t-signing-key-do-not-print-0123456789"

ACI = {
    "CONTAINER_BACKEND": "aci",
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
    "ACI_RESOURCE_GROUP": "rg-dl",
    "ACI_LOCATION": "westeurope",
    "WORKER_IMAGE": "registry.example/worker:1",
    "WORKER_IDENTITY_RESOURCE_ID": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ManagedIdentity/x/id",
    "WORKER_IDENTITY_CLIENT_ID": "00000000-0000-0000-0000-000000000002",
    "OUTPUT_ACCOUNT_URL": "https://account.blob.core.windows.net",
    "CALLBACK_SIGNING_KEY": SECRET,
    "WEBSITE_HOSTNAME": "videodl.azurewebsites.net",
}
LOCAL = {
    "CONTAINER_BACKEND": "local",
    "OUTPUT_CONNECTION_STRING": "UseDevelopmentStorage=true",
    "CALLBACK_BASE_URL": "http://127.0.0.1:7071/",
    "CALLBACK_SIGNING_KEY": SECRET,
}


def test_defaults_from_the_design() -> None:
    s = load_settings(environ=ACI)

    assert s.container_backend == "aci"
    assert s.callback_base_url == "https://videodl.azurewebsites.net"
    assert s.allowed_hosts == (
        "youtube.com", ".youtube.com", "youtu.be", "youtube-nocookie.com", ".youtube-nocookie.com"
    )
    assert s.allow_private_addresses is False
    assert (s.job_deadline_seconds, s.heartbeat_timeout_seconds, s.progress_interval_seconds) == (7200, 600, 20)
    assert (s.provision_max_attempts, s.failed_group_policy, s.failed_group_retention_seconds) == (4, "stop", 86400)
    assert (s.worker_cpu, s.worker_memory_gb) == (1.0, 1.5)
    assert s.sweep_schedule == "0 */10 * * * *"


def test_retry_backoff_defaults_to_thirty_seconds_and_takes_zero_to_an_hour() -> None:
    assert load_settings(environ=ACI).job_retry_backoff_seconds == 30
    for value in (0, 2, 3600):
        settings = load_settings(environ={**ACI, "JOB_RETRY_BACKOFF_SECONDS": str(value)})
        assert settings.job_retry_backoff_seconds == value


def test_local_backend_needs_no_azure_settings() -> None:
    s = load_settings(environ=LOCAL)

    assert s.container_backend == "local"
    assert s.callback_base_url == "http://127.0.0.1:7071"
    assert s.subscription_id is None


def test_environment_overrides_local_settings_json(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {**LOCAL, "JOB_DEADLINE_SECONDS": "100", "HEARTBEAT_TIMEOUT_SECONDS": "30"}}))

    s = load_settings(environ={"JOB_DEADLINE_SECONDS": "300"}, local_settings_path=path)

    assert (s.job_deadline_seconds, s.heartbeat_timeout_seconds) == (300, 30)


@pytest.mark.parametrize(
    "missing", ["AZURE_SUBSCRIPTION_ID", "ACI_RESOURCE_GROUP", "ACI_LOCATION", "WORKER_IMAGE", "CALLBACK_SIGNING_KEY"]
)
def test_missing_setting_is_named(missing: str) -> None:
    env = {k: v for k, v in ACI.items() if k != missing}

    with pytest.raises(SettingsError, match=missing):
        load_settings(environ=env)


def test_blank_counts_as_missing() -> None:
    with pytest.raises(SettingsError, match="ACI_LOCATION"):
        load_settings(environ={**ACI, "ACI_LOCATION": "   "})


def test_output_needs_an_account_url_or_a_connection_string() -> None:
    env = {k: v for k, v in LOCAL.items() if k != "OUTPUT_CONNECTION_STRING"}

    with pytest.raises(SettingsError, match="OUTPUT_ACCOUNT_URL"):
        load_settings(environ=env)


def test_callback_base_url_falls_back_to_website_hostname_or_is_named() -> None:
    env = {k: v for k, v in ACI.items() if k != "WEBSITE_HOSTNAME"}

    with pytest.raises(SettingsError, match="CALLBACK_BASE_URL"):
        load_settings(environ=env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JOB_DEADLINE_SECONDS", "two-hours-secretish"),
        ("JOB_DEADLINE_SECONDS", "9999999999"),
        ("HEARTBEAT_TIMEOUT_SECONDS", "-77777"),
        ("PROVISION_MAX_ATTEMPTS", "99999"),
        ("MAX_DOWNLOAD_BYTES", "lots"),
        ("WORKER_CPU", "eight-cores"),
        ("WORKER_MEMORY_GB", "64"),
        ("ALLOW_PRIVATE_ADDRESSES", "maybe-later"),
        ("FAILED_GROUP_POLICY", "explode-it"),
        ("FAILED_GROUP_RETENTION_SECONDS", "-1"),
        ("JOB_RETRY_BACKOFF_SECONDS", "-5"),
        ("JOB_RETRY_BACKOFF_SECONDS", "3601"),
        ("JOB_RETRY_BACKOFF_SECONDS", "half-a-minute"),
        ("CONTAINER_BACKEND", "kubernetes-cluster"),
        ("CONTAINER_BACKEND", "docker"),  # once accepted, then every create failed
        ("CLEANUP_BACKOFF_SECONDS", "301"),
        ("CALLBACK_BASE_URL", "ftp://callback.example"),
        ("CALLBACK_SIGNING_KEY", "too-short-key-value"),
        ("ALLOWED_HOSTS", "https://youtube.com/"),
        ("ALLOWED_HOSTS", " , "),
        ("SWEEP_SCHEDULE", "every-ten-minutes"),
        ("SWEEP_SCHEDULE", "*/7 * * * *"),
    ],
)
def test_malformed_setting_is_named_and_its_value_never_shown(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as e:
        load_settings(environ={**ACI, name: value})

    assert name in str(e.value)
    assert value.strip() not in str(e.value)
    assert SECRET not in str(e.value)


def test_registry_credentials_come_as_a_pair_and_the_password_is_not_shown() -> None:
    with pytest.raises(SettingsError, match="REGISTRY_USERNAME") as e:
        load_settings(environ={**ACI, "REGISTRY_PASSWORD": "hunter2-registry-password"})

    assert "hunter2" not in str(e.value)


def test_secrets_stay_out_of_the_repr() -> None:
    s = load_settings(environ={**ACI, "REGISTRY_USERNAME": "u", "REGISTRY_PASSWORD": "hunter2-registry-password"})

    assert SECRET not in repr(s) and SECRET not in str(s)
    assert "hunter2" not in repr(s)


def test_broken_local_settings_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text('{"Values": {"CALLBACK_SIGNING_KEY": "' + SECRET + '",')

    with pytest.raises(SettingsError) as e:
        load_settings(environ={}, local_settings_path=path)

    assert "local.settings.json" in str(e.value)
    assert SECRET not in str(e.value)


@pytest.mark.parametrize("schedule", ["0 */10 * * * *", "0 0 3 * * Sun", "00:05:00"])
def test_sweep_schedule_accepts_ncrontab_and_timespan(schedule: str) -> None:
    assert load_settings(environ={**ACI, "SWEEP_SCHEDULE": schedule}).sweep_schedule == schedule


def test_allowed_hosts_are_normalised() -> None:
    s = load_settings(environ={**ACI, "ALLOWED_HOSTS": " YouTube.com. , .Example.org ,,"})

    assert s.allowed_hosts == ("youtube.com", ".example.org")


def test_every_setting_is_listed_in_the_sample() -> None:
    sample = json.loads((Path(__file__).resolve().parents[2] / "local.settings.sample.json").read_text())["Values"]

    assert set(SETTING_NAMES) <= set(sample)
