"""The worker takes its secure values from `SECURE_ENV_FILE` (the podman backend's secret, issue 19):
only secure names, the env's own value first, and an unusable file named without its content."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from videojob.contract import container_env as E
from worker.config import WorkerEnvError, load_config

PLAIN = {
    E.JOB_ID: "job-1",
    E.JOB_URL: "https://youtu.be/x",
    E.OUTPUT_CONTAINER: "downloads",
    E.CALLBACK_URL: "http://127.0.0.1:7071/api/jobs/job-1/status",
}
SECURE = {
    E.CALLBACK_TOKEN: "token-from-the-file-0123456789",
    E.STAGING_MEDIA_URL: "http://127.0.0.1:10000/devstoreaccount1/staging/job-1/r/a1/media?sp=w&sig=file-secret",
    E.STAGING_RECORD_URL: "http://127.0.0.1:10000/devstoreaccount1/staging/job-1/r/a1/record.json?sp=w&sig=file-secret",
    E.PROXY_URL: "http://user:file-secret@127.0.0.1:3128",
}


def write(tmp_path: Path, content: object) -> str:
    path = tmp_path / "secure-env.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_the_secure_values_come_from_the_file(tmp_path: Path) -> None:
    env = load_config({**PLAIN, E.SECURE_ENV_FILE: write(tmp_path, SECURE)}).env
    assert env.callback_token == SECURE[E.CALLBACK_TOKEN]
    assert (env.media_upload_url, env.record_upload_url) == (SECURE[E.STAGING_MEDIA_URL], SECURE[E.STAGING_RECORD_URL])
    assert env.proxy_url == SECURE[E.PROXY_URL]


def test_only_secure_names_are_taken_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, {**SECURE, E.JOB_URL: "https://evil.example/x", E.ALLOW_PRIVATE_ADDRESSES: "true"})
    env = load_config({**PLAIN, E.SECURE_ENV_FILE: path}).env
    assert env.url == PLAIN[E.JOB_URL] and env.allow_private_addresses is False


@pytest.mark.parametrize(
    "content", ["not json", ["a list"], {E.CALLBACK_TOKEN: 5}, "x" * (E.MAX_SECURE_ENV_FILE_BYTES + 10)]
)
def test_an_unusable_file_is_a_config_error_naming_the_variable(tmp_path: Path, content: object) -> None:
    with pytest.raises(WorkerEnvError) as e:
        load_config({**PLAIN, E.SECURE_ENV_FILE: write(tmp_path, content)})
    assert E.SECURE_ENV_FILE in str(e.value) and "x" * 20 not in str(e.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(WorkerEnvError, match=E.SECURE_ENV_FILE):
        load_config({**PLAIN, E.CALLBACK_TOKEN: "t" * 20, E.SECURE_ENV_FILE: str(tmp_path / "absent.json")})
