"""Classification of Azure Resource Manager failures: may trying again help?

Pure functions over the HTTP status and the ARM error code (and, for one ambiguous code, the
message). The `aci` backend extracts those from SDK exceptions and raises `BackendError` with
the result, so the orchestrator can retry transient failures and fail at once on the rest.

Choices worth knowing:
- A code decides before the status: ARM answers quota exhaustion with 400 or 409
  (`ContainerGroupQuotaReached`), and a failed asynchronous operation arrives on a 200 poll.
- `ServiceUnavailable` is usually a capacity shortage in the region (409, "retry later"), but ACI
  also uses it for "container group quota ... exceeded": that variant is a quota, not retryable.
- 409 without a known code is retryable: it is a state conflict (a group still being deleted or
  mid-operation, `ContainerGroupTransitioning`), which resolves by itself; the orchestrator's
  attempts are bounded, so a permanent conflict still fails after a few tries.
- An unknown code on a failed asynchronous operation (status < 400) is not retryable: a
  deployment that failed for a reason we cannot name is more likely to fail the same way again.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_MESSAGE_CHARS = 300

QUOTA_CODES: frozenset[str] = frozenset(
    {
        "ContainerGroupQuotaReached",
        "QuotaExceeded",
        "StandardCoresQuotaReached",
        "StandardCoresQuotaExceeded",
        "StandardSpotCoresQuotaExceeded",
    }
)

PERMANENT_CODES: frozenset[str] = frozenset(
    {
        # The image cannot be pulled (wrong name, tag, registry or pull permission).
        "InaccessibleImage",
        "InvalidImage",
        "InvalidImageRegistryCredentialType",
        "RegistryCredentialsNotFound",
        # The request itself is wrong.
        "InvalidContainerGroupName",
        "InvalidResourceName",
        "InvalidRequestContent",
        "InvalidRequestFormat",
        "InvalidParameter",
        "ResourceRequestsExceedMaxAllowed",
        "OsVersionNotSupported",
        "UnsupportedSku",
        "LocationNotAvailableForResourceType",
        "NoRegisteredProviderFound",
        # Identity, permission, subscription.
        "AuthorizationFailed",
        "LinkedAuthorizationFailed",
        "AuthenticationFailed",
        "InvalidAuthenticationToken",
        "InvalidAuthenticationTokenTenant",
        "ExpiredAuthenticationToken",
        "RequestDisallowedByPolicy",
        "MissingSubscriptionRegistration",
        "SubscriptionNotFound",
        "ReadOnlyDisabledSubscription",
        "ResourceGroupNotFound",
        "ResourceGroupBeingDeleted",
    }
)

TRANSIENT_CODES: frozenset[str] = frozenset(
    {
        "ServiceUnavailable",
        "InternalServerError",
        "RetryableError",
        "GatewayTimeout",
        "RequestTimeout",
        "OperationTimedOut",
        "TooManyRequests",
        "SubscriptionRequestsThrottled",
        "ResourceRequestsNotAvailable",
        "ContainerGroupTransitioning",
        "AnotherOperationInProgress",
        "Conflict",
    }
)

RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 409, 429})


@dataclass(frozen=True)
class ArmFailure:
    """A classified ARM failure: `code` is the ARM error code, or a stand-in when there is none."""

    code: str
    message: str
    retryable: bool


def is_quota(code: str, message: str) -> bool:
    if code in QUOTA_CODES or "quota" in code.lower():
        return True
    return code == "ServiceUnavailable" and "quota" in message.lower()


def fallback_code(status: int | None) -> str:
    if status is None:
        return "ConnectionError"
    if status == 429:
        return "TooManyRequests"
    if status >= 500:
        return "ServerError"
    return f"HttpError{status}"


def short_message(message: str | None) -> str:
    """One line, bounded: ARM messages can be long, and this ends up in customStatus."""
    text = " ".join((message or "").split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return text


def is_retryable(status: int | None, code: str | None, message: str = "") -> bool:
    """Whether trying the same request again may succeed."""
    if code:
        if is_quota(code, message) or code in PERMANENT_CODES:
            return False
        if code in TRANSIENT_CODES:
            return True
    if status is None:
        # No HTTP answer at all: connection refused/reset, DNS, read timeout.
        return True
    if status in RETRYABLE_STATUSES or status >= 500:
        return True
    return False


def classify_arm_error(status: int | None, code: str | None, message: str | None) -> ArmFailure:
    """The one decision: ARM status + error code (+ message) -> code, short message, retryable."""
    text = short_message(message)
    return ArmFailure(
        code=code or fallback_code(status),
        message=text or "no message",
        retryable=is_retryable(status, code, text),
    )
