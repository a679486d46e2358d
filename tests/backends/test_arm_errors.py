"""ARM failure classification: may the orchestrator try again?"""

import pytest

from tests.backends.arm_recorded import (
    COUNT_QUOTA_AT_LIMIT_MESSAGE,
    QUOTA_CODE,
    SPOT_QUOTA_MESSAGE,
    ZERO_QUOTA_SERVICE_UNAVAILABLE_MESSAGE,
    quota_refusal_message,
)
from videojob.adapters.containers.arm_errors import (
    AUTHORIZATION_PROPAGATION_SECONDS,
    AUTHORIZATION_RETRY_AFTER_SECONDS,
    MAX_MESSAGE_CHARS,
    QUOTA_RETRY_AFTER_SECONDS,
    QuotaFigures,
    classify_arm_error,
    quota_figures,
)
from videojob.domain.failure_reason import FailureReason


@pytest.mark.parametrize(
    ("status", "code", "message", "retryable"),
    [
        # Transient: throttling, server trouble, capacity, state conflicts.
        (429, None, "", True),
        (500, "InternalServerError", "", True),
        (502, None, "", True),
        (503, "ServiceUnavailable", "try later", True),
        (409, "ServiceUnavailable", "The requested resource is not available in the location", True),
        (409, "ContainerGroupTransitioning", "still transitioning", True),
        (409, "Conflict", "being deleted", True),
        (409, None, "", True),
        (408, None, "", True),
        (None, None, "connection reset", True),
        (200, "RetryableError", "", True),
        # Not now: a quota other groups hold (the job waits in the queue, issue 13).
        (400, "ContainerGroupQuotaReached", "", True),
        (409, "ContainerGroupQuotaReached", "", True),
        (400, "QuotaExceeded", "Operation could not be completed as it results in exceeding approved"
         " StandardCores quota. Limit: '10', Usage: '10' Requested: '1'.", True),
        (409, "ServiceUnavailable", "container group quota 'ContainerGroups' exceeded in region", True),
        # Permanent: image, a quota of 0, names, auth, bad requests.
        (200, "InaccessibleImage", "image not accessible", False),
        (400, "InaccessibleImage", "", False),
        # ACI's own quota message (Microsoft Learn, ACI Spot container troubleshooting): none granted.
        (400, "ContainerGroupQuotaReached", "Resource type 'Microsoft.ContainerInstance/containerGroups' container"
         " group quota 'StandardSpotCores' exceeded in region 'westeurope'. Limit: '0', Usage: '0' Requested: '1'.",
         False),
        (400, "InvalidContainerGroupName", "", False),
        (403, "AuthorizationFailed", "", False),  # with no age known: permanent
        (400, "InvalidImageRegistryIdentity", "", False),
        (400, "AmbiguousImageResitryCredentialType", "", False),
        (200, "InvalidImageRegistryCredentialType", "", False),
        (401, "InvalidAuthenticationToken", "", False),
        (409, "MissingSubscriptionRegistration", "", False),
        (404, "ResourceGroupNotFound", "", False),
        (400, "SomethingNew", "", False),
        (404, None, "", False),
        # A failed async operation with a code nobody documented: assume it would fail again.
        (200, "DeploymentFailedForSomeReason", "", False),
        # A known permanent code wins over a retryable status.
        (500, "InaccessibleImage", "", False),
    ],
)
def test_retryable(status, code, message, retryable):
    assert classify_arm_error(status, code, message).retryable is retryable


def test_code_falls_back_to_a_name_for_the_status():
    assert classify_arm_error(429, None, None).code == "TooManyRequests"
    assert classify_arm_error(503, None, None).code == "ServerError"
    assert classify_arm_error(None, None, None).code == "ConnectionError"
    assert classify_arm_error(418, None, None).code == "HttpError418"
    assert classify_arm_error(400, "InvalidContainerGroupName", "x").code == "InvalidContainerGroupName"


def test_message_is_one_bounded_line():
    f = classify_arm_error(400, "X", "first line\n\nsecond   line " + "y" * 1000)
    assert "\n" not in f.message
    assert f.message.startswith("first line second line")
    assert len(f.message) == MAX_MESSAGE_CHARS


@pytest.mark.parametrize("code", ["AuthorizationFailed", "LinkedAuthorizationFailed"])
def test_a_refused_authorization_is_retryable_only_within_the_propagation_window(code):
    window = AUTHORIZATION_PROPAGATION_SECONDS
    assert 120 <= window <= 600  # a few minutes: role assignments usually land well within
    assert classify_arm_error(403, code, "", age_seconds=0).retryable is True
    assert classify_arm_error(403, code, "", age_seconds=window - 1).retryable is True
    assert classify_arm_error(403, code, "", age_seconds=window).retryable is False


@pytest.mark.parametrize("code", ["AuthorizationFailed", "LinkedAuthorizationFailed"])
def test_a_refused_authorization_means_not_now_only_within_the_window(code):
    # "Not now" lets the orchestrator wait without spending its few provisioning tries.
    assert classify_arm_error(403, code, "", age_seconds=10).retry_after_seconds == AUTHORIZATION_RETRY_AFTER_SECONDS
    assert classify_arm_error(403, code, "", age_seconds=AUTHORIZATION_PROPAGATION_SECONDS).retry_after_seconds is None
    assert classify_arm_error(503, "ServiceUnavailable", "busy").retry_after_seconds is None


def test_a_missing_resource_group_says_it_is_configuration():
    f = classify_arm_error(404, "ResourceGroupNotFound", "Resource group 'rg-test' could not be found.")
    assert (f.code, f.retryable) == ("ResourceGroupNotFound", False)
    assert f.message == "configuration: Resource group 'rg-test' could not be found. (check ACI_RESOURCE_GROUP)"


@pytest.mark.parametrize(
    ("code", "message"),
    [("ContainerGroupQuotaReached", ""), ("QuotaExceeded", "Limit: '10', Usage: '10'"),
     ("ServiceUnavailable", "container group quota 'ContainerGroups' exceeded")],
)
def test_a_quota_refusal_means_not_now(code, message):
    failure = classify_arm_error(409, code, message)
    assert failure.retryable is True
    assert failure.retry_after_seconds == QUOTA_RETRY_AFTER_SECONDS


def test_a_quota_of_zero_is_configuration():
    failure = classify_arm_error(400, "ContainerGroupQuotaReached", "quota 'StandardSpotCores' Limit: '0', Usage: '0'")
    assert failure.retryable is False
    assert failure.retry_after_seconds is None


# --- quotas: may it free, or never (issue 18.5), from Azure's own quoted refusals -------------------


@pytest.mark.parametrize(
    ("code", "message"),
    [(QUOTA_CODE, SPOT_QUOTA_MESSAGE), (QUOTA_CODE, COUNT_QUOTA_AT_LIMIT_MESSAGE),
     ("ServiceUnavailable", quota_refusal_message("ContainerGroups", "eastus", 100, 100, 1))],
    ids=["spot-90-of-100-with-12-used", "cores-at-their-limit", "group-count-at-its-limit"],
)
def test_a_quota_the_request_fits_under_waits(code, message):
    failure = classify_arm_error(400, code, message)
    assert (failure.reason, failure.retryable) == (FailureReason.QUOTA_EXHAUSTED, True)
    assert failure.retry_after_seconds == QUOTA_RETRY_AFTER_SECONDS


@pytest.mark.parametrize(
    ("message", "quota", "limit", "requested"),
    [(quota_refusal_message("StandardCores", "eastus", 1, 0, 2), "StandardCores", 1, 2),
     (quota_refusal_message("StandardSpotCores", "westeurope", 10, 0, 16), "StandardSpotCores", 10, 16),
     (ZERO_QUOTA_SERVICE_UNAVAILABLE_MESSAGE, "ContainerGroups", 0, 1)],
    ids=["1-core-quota-2-core-worker", "spot-10-of-16", "limit-0"],
)
def test_a_request_above_the_quota_limit_fails_at_once_naming_quota_and_request(message, quota, limit, requested):
    code = "ServiceUnavailable" if "ContainerGroups" in message else QUOTA_CODE
    failure = classify_arm_error(400 if code == QUOTA_CODE else 409, code, message)
    assert (failure.reason, failure.retryable, failure.retry_after_seconds) == (
        FailureReason.QUOTA_IMPOSSIBLE, False, None)
    assert f"quota '{quota}'" in failure.message
    assert f"allows {limit} and one container group requests {requested}" in failure.message
    assert "WORKER_CPU" in failure.message and len(failure.message) <= MAX_MESSAGE_CHARS


def test_quota_figures_read_from_the_documented_sentence():
    figures = quota_figures(SPOT_QUOTA_MESSAGE)
    assert figures == QuotaFigures("StandardSpotCores", "westeurope", 100, 12, 90)
    assert not figures.impossible
    assert quota_figures("container group quota 'ContainerGroups' exceeded") is None


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [(403, "AuthorizationFailed", FailureReason.AUTHORIZATION), (404, "ResourceGroupNotFound", FailureReason.NOT_FOUND),
     (404, None, FailureReason.NOT_FOUND), (400, "InaccessibleImage", FailureReason.PERMANENT),
     (409, "Conflict", FailureReason.TRANSIENT), (None, None, FailureReason.TRANSIENT),
     (500, None, FailureReason.TRANSIENT), (400, "SomethingNew", FailureReason.PERMANENT)],
)
def test_every_failure_has_a_reason(status, code, reason):
    assert classify_arm_error(status, code, "").reason == reason
