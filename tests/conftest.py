from collections.abc import Iterator

import pytest

from tests.support.services import Azurite, run_azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A real Azurite (blob service, in memory) on a free loopback port, for the whole session."""
    with run_azurite() as instance:
        yield instance
