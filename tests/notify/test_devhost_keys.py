"""The devhost writes a webhook signing key into local.settings.json, like the callback key."""

from __future__ import annotations

import json

from devhost.emulator import config


def test_local_settings_get_both_signing_keys_and_an_old_file_gets_the_missing_one(tmp_path):
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps({"Values": {"CALLBACK_SIGNING_KEY": "", "NOTIFY_SIGNING_KEY": ""}}))
    fresh, old = tmp_path / "fresh.json", tmp_path / "old.json"
    old.write_text(json.dumps({"Values": {"CALLBACK_SIGNING_KEY": "kept-" + "x" * 40, "OUTPUT_CONTAINER": "mine"}}))

    assert config.ensure_local_settings(fresh, sample)
    assert config.ensure_local_settings(old, sample)
    assert not config.ensure_local_settings(old, sample)

    fresh_values = json.loads(fresh.read_text())["Values"]
    old_values = json.loads(old.read_text())["Values"]
    assert len(fresh_values["NOTIFY_SIGNING_KEY"]) >= 48
    assert fresh_values["NOTIFY_SIGNING_KEY"] != fresh_values["CALLBACK_SIGNING_KEY"]
    assert old_values["CALLBACK_SIGNING_KEY"] == "kept-" + "x" * 40 and old_values["OUTPUT_CONTAINER"] == "mine"
    assert len(old_values["NOTIFY_SIGNING_KEY"]) >= 48
