"""Classification of Azure Resource Manager failures: may trying again help?

Pure functions over the HTTP status and the ARM error code (and, for one ambiguous code, the
message). The `aci` backend extracts those from SDK exceptions and raises `BackendError` with
the result, so the orchestrator can retry transient failures and fail at once on the rest.

Choices worth knowing:
- A code decides before the status: ARM answers quota exhaustion with 400 or 409
  (`ContainerGroupQuotaReached`), and a failed asynchronous operation arrives on a 200 poll.
- `ServiceUnavailable` is usually a capacity shortage in the region (409, "retry later"), but ACI
  also uses it for "container group quota ... exceeded": that variant is a quota.
- A quota refusal (`ContainerGroupQuotaReached`, `QuotaExceeded`, the `ServiceUnavailable`
  variant) means "not now": other groups hold the quota and will give it back. It is retryable
  with `retry_after_seconds`; the orchestrator gives its `MAX_RUNNING_JOBS` slot back and waits
  in the queue with a backoff, within its deadline (issue 13). Except a quota whose limit is 0
  ("Limit: '0'", e.g. no Spot cores on the subscription): that is configuration, permanent.
- 409 without a known code is retryable: it is a state conflict (a group still being deleted or
  mid-operation, `ContainerGroupTransitioning`), which resolves by itself; the orchestrator's
  attempts are bounded, so a permanent conflict still fails after a few tries.
- An unknown code on a failed asynchronous operation (status < 400) is not retryable: a
  deployment that failed for a reason we cannot name is more likely to fail the same way again.
- `AuthorizationFailed` / `LinkedAuthorizationFailed` right after a deployment are usually role
  assignments still propagating ("If access was recently granted, please refresh your
  credentials"): retryable while the attempt is younger than `AUTHORIZATION_PROPAGATION_SECONDS`
  (the caller passes its age), permanent after that or when no age is known. Within the window
  they mean "not now" (`retry_after_seconds`): the orchestrator waits and tries again without
  counting a failed try, so its few provisioning tries are not spent before the roles arrive.
- Every code listed here appears in Azure's own material (the REST API specs and their examples,
  the SDKs, the Container Instances troubleshooting pages); none is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_MESSAGE_CHARS = 300

QUOTA_CODES: frozenset[str] = frozenset(
    {
        # ACI names the exhausted quota in the message ("container group quota 'StandardCores'
        # exceeded in region ...") under this one code.
        "ContainerGroupQuotaReached",
        "QuotaExceeded",
    }
)

AUTHORIZATION_PROPAGATION_CODES: frozenset[str] = frozenset({"AuthorizationFailed", "LinkedAuthorizationFailed"})
AUTHORIZATION_PROPAGATION_SECONDS = 300
"""How long after an attempt began a refused authorization is still taken for a role assignment
that has not propagated yet (ARM documents minutes; Azure's own ARO installer retries for ten)."""
AUTHORIZATION_RETRY_AFTER_SECONDS = 30
QUOTA_RETRY_AFTER_SECONDS = 30
"""The first pause after a quota refusal (the orchestrator backs off from it, doubling)."""
"""The pause before asking again while a refused authorization may still be propagating."""

PERMANENT_CODES: frozenset[str] = frozenset(
    {
        # The image cannot be pulled (wrong name, tag, registry or pull permission).
        "InaccessibleImage",
        "InvalidImage",
        # The registry credential is configured wrongly (the service's own spelling, `Resitry`).
        "InvalidImageRegistryCredentialType",
        "InvalidImageRegistryIdentity",
        "AmbiguousImageResitryCredentialType",
        # The request itself is wrong.
        "InvalidContainerGroupName",
        "InvalidResourceName",
        "InvalidRequestContent",
        "InvalidRequestFormat",
        "InvalidParameter",
        "UnsupportedSku",
        "LocationNotAvailableForResourceType",
        "NoRegisteredProviderFound",
        # Identity, permission, subscription (authorization: see AUTHORIZATION_PROPAGATION_CODES).
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
    retry_after_seconds: float | None = None


def is_quota(code: str, message: str) -> bool:
    if code in QUOTA_CODES or "quota" in code.lower():
        return True
    return code == "ServiceUnavailable" and "quota" in message.lower()


def is_zero_quota(message: str) -> bool:
    """ACI's quota message names the limit (`Limit: '0', Usage: '0' Requested: '1'`): a limit of 0
    never frees up."""
    return "limit: '0'" in message.lower()


def is_capacity_refusal(code: str, message: str) -> bool:
    """A quota that other groups hold now and will give back: wait, do not fail."""
    return is_quota(code, message) and not is_zero_quota(message)


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


def is_retryable(status: int | None, code: str | None, message: str = "", age_seconds: float | None = None) -> bool:
    """Whether trying the same request again may succeed. `age_seconds`: how long ago the attempt
    that met this failure began (bounds the wait for role assignments to propagate)."""
    if code:
        if code in AUTHORIZATION_PROPAGATION_CODES:
            return age_seconds is not None and age_seconds < AUTHORIZATION_PROPAGATION_SECONDS
        if is_quota(code, message):
            return not is_zero_quota(message)
        if code in PERMANENT_CODES:
            return False
        if code in TRANSIENT_CODES:
            return True
    if status is None:
        # No HTTP answer at all: connection refused/reset, DNS, read timeout.
        return True
    if status in RETRYABLE_STATUSES or status >= 500:
        return True
    return False


def _retry_after(code: str, message: str) -> float | None:
    if code in AUTHORIZATION_PROPAGATION_CODES:
        return AUTHORIZATION_RETRY_AFTER_SECONDS
    if is_capacity_refusal(code, message):
        return QUOTA_RETRY_AFTER_SECONDS
    return None


def classify_arm_error(
    status: int | None, code: str | None, message: str | None, age_seconds: float | None = None
) -> ArmFailure:
    """The one decision: ARM status + error code (+ message, + the attempt's age) -> code, short
    message, retryable."""
    text = short_message(message)
    if code == "ResourceGroupNotFound":
        text = short_message(f"configuration: {text or 'the resource group does not exist'} (check ACI_RESOURCE_GROUP)")
    retryable = is_retryable(status, code, text, age_seconds)
    return ArmFailure(
        code=code or fallback_code(status),
        message=text or "no message",
        retryable=retryable,
        retry_after_seconds=_retry_after(code or "", text) if retryable else None,
    )
