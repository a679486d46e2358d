"""The memory watchdog's policy (issue 18): past its share of the container it kills the job's
helper processes but not the upload process, and fails the job `out_of_memory` once."""

from __future__ import annotations

import subprocess
import threading

from worker.memory_limit import MemoryWatchdog, MiB, out_of_memory_error


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"])


def test_past_its_share_the_watchdog_kills_the_helpers_spares_the_upload_and_fails_once() -> None:
    helper, upload = sleeper(), sleeper()
    errors = []
    fired = threading.Event()
    watchdog = MemoryWatchdog(
        400,
        lambda error: (errors.append(error), fired.set()),
        spared=lambda: (upload.pid, None),
        interval_seconds=0.01,
        measure=lambda pid: 361 * MiB,  # over 90 % of 400 MiB
        helpers=lambda pid: [helper.pid, upload.pid],
    ).start()
    try:
        assert fired.wait(10)
        assert helper.wait(10) == -9
        assert upload.poll() is None
        [error] = errors
        assert error.code == "out_of_memory" and not error.retryable
        assert "WORKER_MEMORY_GB" in error.message and "400 MiB" in error.message
    finally:
        watchdog.stop()
        upload.kill()
        helper.kill()


def test_under_its_share_the_watchdog_does_nothing() -> None:
    helper = sleeper()
    errors: list[object] = []
    looked = threading.Event()

    def measure(pid: int) -> int:
        looked.set()
        return 359 * MiB

    watchdog = MemoryWatchdog(
        400, errors.append, interval_seconds=0.01, measure=measure, helpers=lambda pid: [helper.pid]
    ).start()
    try:
        assert looked.wait(10)
        watchdog.stop()
        assert errors == [] and helper.poll() is None
    finally:
        helper.kill()


def test_the_message_names_the_setting_that_fixes_it() -> None:
    error = out_of_memory_error(1536, "a MemoryError")
    assert "1536 MiB" in error.message and "WORKER_MEMORY_GB" in error.message
