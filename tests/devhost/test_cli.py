"""The client CLI's presentation: progress lines, error extraction, exit codes."""

from __future__ import annotations

import io
import json

from videojob.client import cli


def test_progress_line_shows_phase_percent_bytes_speed_and_eta():
    status = {"runtimeStatus": "Running", "customStatus": {
        "phase": "downloading", "percent": 50.0, "downloadedBytes": 5 * 1024**2, "totalBytes": 10 * 1024**2,
        "speedBps": 1024**2, "etaSeconds": 75}}

    line = cli.render_progress(status, width=10)

    assert line.startswith("downloading")
    assert "[#####-----]  50.0%" in line
    assert "5.0 MiB/10.0 MiB" in line and "1.0 MiB/s" in line and "ETA 01:15" in line


def test_progress_line_before_the_worker_reports():
    assert "---%" in cli.render_progress({"runtimeStatus": "Pending", "customStatus": None})


def test_the_error_code_comes_from_custom_status_or_the_failure_output():
    from_custom = {"runtimeStatus": "Failed", "customStatus": {"error": {"code": "cancelled", "message": "by user"}}}
    from_output = {"runtimeStatus": "Failed", "customStatus": None,
                   "output": "Orchestrator function 'download_job' failed: deadline_exceeded: too slow"}
    terminated = {"runtimeStatus": "Terminated", "output": "operator"}

    assert cli.error_of(from_custom)["code"] == "cancelled"
    assert cli.error_of(from_output) == {"code": "deadline_exceeded", "message": "too slow"}
    assert cli.error_of(terminated)["code"] == "terminated"


def test_a_completed_job_prints_its_output_and_a_failed_one_exits_non_zero_with_its_code():
    out, err = io.StringIO(), io.StringIO()
    ok = cli.final_result({"runtimeStatus": "Completed", "output": {"blob": {"url": "u"}}}, out, err)
    failed_out = io.StringIO()
    failed = cli.final_result({"instanceId": "j1", "runtimeStatus": "Failed",
                               "customStatus": {"error": {"code": "heartbeat_lost", "message": "gone"}}},
                              failed_out, err)

    assert ok == 0 and json.loads(out.getvalue()) == {"blob": {"url": "u"}}
    assert failed == 1 and "heartbeat_lost: gone" in err.getvalue()
    assert json.loads(failed_out.getvalue())["error"]["code"] == "heartbeat_lost"


def test_an_unreachable_api_is_a_request_failure(capsys):
    code = cli.main(["--base-url", "http://127.0.0.1:9", "status", "abc"])

    assert code == 2 and "cannot reach" in capsys.readouterr().err
