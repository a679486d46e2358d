"""ARM failure classification: may the orchestrator try again?"""

import pytest

from videojob.backends.arm_errors import (
    AUTHORIZATION_PROPAGATION_SECONDS,
    AUTHORIZATION_RETRY_AFTER_SECONDS,
    MAX_MESSAGE_CHARS,
    QUOTA_RETRY_AFTER_SECONDS,
    classify_arm_error,
)


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
