"""Services the tests start themselves. One owner: the devhost's stack module, which `make demo`
and `make serve` use too, so tests run Azurite exactly as the local stack does."""

from devhost.stack import AZURITE_ACCOUNT, AZURITE_KEY, AZURITE_MAIN, REPO, Azurite, free_port, run_azurite

__all__ = ["AZURITE_ACCOUNT", "AZURITE_KEY", "AZURITE_MAIN", "REPO", "Azurite", "free_port", "run_azurite"]
