"""The worker image under test: the worker's own media, callback receiver and Azurite fixtures."""

from __future__ import annotations

import pytest

from tests.support.podman import worker_image
from tests.worker.conftest import blob_service, callbacks, media_root, media_server  # noqa: F401 (fixtures)


@pytest.fixture(scope="session")
def image() -> str:
    return worker_image()
