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
  variant) names its figures: "quota 'StandardCores' exceeded in region 'eastus'. Limit: '10',
  Usage: '10' Requested: '1'." When the request fits under the limit (Requested <= Limit) it
  means "not now": other groups hold the quota and will give it back (`QUOTA_EXHAUSTED`,
  retryable with `retry_after_seconds`; the orchestrator gives its `MAX_RUNNING_JOBS` slot back
  and waits in the queue with a backoff, within its deadline, issue 13). When the request is
  above the limit, or the limit is 0 (no Spot cores on the subscription), nothing that ends can
  free it: `QUOTA_IMPOSSIBLE`, permanent, and the message names the quota, its limit and the
  request (issue 18.5). A refusal without figures is taken for "not now", as before. One page
  (MicrosoftDocs/SupportArticles-docs, ACI "service-unavailable-container-group-quota-exceeded")
  shows `ServiceUnavailable` with "Limit: '0'" for a different cause: the same group name
  deployed to several regions at once trips ACI's fraud detection. This service deploys each
  group name once, in one region, so a 0 limit is taken at its word.
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
- Each failure carries a `FailureReason` (`videojob.domain.failure_reason`), decided here, so the
  orchestration matches a type and never ARM's text (issue 20.3).
- Every code listed here appears in Azure's own material (the REST API specs and their examples,
  the SDKs, the Container Instances troubleshooting pages); none is guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from videojob.domain.failure_reason import FailureReason

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
"""The pause before asking again while a refused authorization may still be propagating."""
QUOTA_RETRY_AFTER_SECONDS = 30
"""The first pause after a quota refusal (the orchestrator backs off from it, doubling)."""

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

NOT_FOUND_CODES: frozenset[str] = frozenset({"ResourceGroupNotFound", "SubscriptionNotFound", "ResourceNotFound"})

RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 409, 429})


@dataclass(frozen=True)
class ArmFailure:
    """A classified ARM failure: `code` is the ARM error code, or a stand-in when there is none."""

    code: str
    message: str
    retryable: bool
    retry_after_seconds: float | None = None
    reason: FailureReason = FailureReason.PERMANENT


@dataclass(frozen=True)
class QuotaFigures:
    """What a quota refusal says of itself: "quota 'StandardCores' exceeded in region 'eastus'.
    Limit: '10', Usage: '10' Requested: '1'." (only the limit is required)."""

    name: str | None
    region: str | None
    limit: int
    usage: int | None = None
    requested: int | None = None

    @property
    def impossible(self) -> bool:
        """Nothing that ends can make room: the limit is 0, or one request is above it."""
        return self.limit == 0 or (self.requested is not None and self.requested > self.limit)

    def describe(self) -> str:
        where = f" in region '{self.region}'" if self.region else ""
        wanted = f"one container group requests {self.requested}" if self.requested is not None else "nothing fits"
        return (f"quota '{self.name or 'unnamed'}'{where} allows {self.limit} and {wanted}: it can never be "
                "granted; raise the quota (Azure portal, Quotas) or lower the worker's size (WORKER_CPU, "
                "WORKER_MEMORY_GB)")


_QUOTA_LIMIT = re.compile(r"Limit:\s*'(\d{1,12})'", re.IGNORECASE)
_QUOTA_USAGE = re.compile(r"Usage:\s*'(\d{1,12})'", re.IGNORECASE)
_QUOTA_REQUESTED = re.compile(r"Requested:\s*'(\d{1,12})'", re.IGNORECASE)
_QUOTA_NAME = re.compile(r"quota '([^']{1,80})'", re.IGNORECASE)
_QUOTA_REGION = re.compile(r"in region '([^']{1,80})'", re.IGNORECASE)


def _found(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(1) if match else None


def quota_figures(message: str) -> QuotaFigures | None:
    """The figures of a quota refusal's message, or None when it names no limit."""
    text = message or ""
    limit = _found(_QUOTA_LIMIT, text)
    if limit is None:
        return None
    usage, requested = _found(_QUOTA_USAGE, text), _found(_QUOTA_REQUESTED, text)
    return QuotaFigures(_found(_QUOTA_NAME, text), _found(_QUOTA_REGION, text), int(limit),
                        int(usage) if usage else None, int(requested) if requested else None)


def is_quota(code: str, message: str) -> bool:
    if code in QUOTA_CODES or "quota" in code.lower():
        return True
    return code == "ServiceUnavailable" and "quota" in message.lower()


def quota_reason(message: str) -> FailureReason:
    """Of a quota refusal: may it free (other groups hold it), or never (the request is above the limit)."""
    figures = quota_figures(message)
    return FailureReason.QUOTA_IMPOSSIBLE if figures and figures.impossible else FailureReason.QUOTA_EXHAUSTED


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


def failure_reason(status: int | None, code: str | None, message: str = "", age_seconds: float | None = None
                   ) -> tuple[FailureReason, bool]:
    """What kind of failure, and whether trying the same request again may succeed. `age_seconds`:
    how long ago the attempt that met this failure began (bounds the wait for role assignments
    to propagate). `message` is ARM's whole message (quota figures are read from it)."""
    if code:
        if code in AUTHORIZATION_PROPAGATION_CODES:
            propagating = age_seconds is not None and age_seconds < AUTHORIZATION_PROPAGATION_SECONDS
            return FailureReason.AUTHORIZATION, propagating
        if is_quota(code, message):
            reason = quota_reason(message)
            return reason, reason == FailureReason.QUOTA_EXHAUSTED
        if code in NOT_FOUND_CODES:
            return FailureReason.NOT_FOUND, False
        if code in PERMANENT_CODES:
            return FailureReason.PERMANENT, False
        if code in TRANSIENT_CODES:
            return FailureReason.TRANSIENT, True
    if status is None or status in RETRYABLE_STATUSES or status >= 500:
        # No HTTP answer at all (connection refused/reset, DNS, read timeout), or a retryable status.
        return FailureReason.TRANSIENT, True
    if status == 404:
        return FailureReason.NOT_FOUND, False
    return FailureReason.PERMANENT, False


_RETRY_AFTER: dict[FailureReason, float] = {
    FailureReason.AUTHORIZATION: AUTHORIZATION_RETRY_AFTER_SECONDS,
    FailureReason.QUOTA_EXHAUSTED: QUOTA_RETRY_AFTER_SECONDS,
}


def classify_arm_error(
    status: int | None, code: str | None, message: str | None, age_seconds: float | None = None
) -> ArmFailure:
    """The one decision: ARM status + error code (+ message, + the attempt's age) -> code, reason,
    short message, retryable."""
    reason, retryable = failure_reason(status, code, message or "", age_seconds)
    text = short_message(message)
    if code == "ResourceGroupNotFound":
        text = short_message(f"configuration: {text or 'the resource group does not exist'} (check ACI_RESOURCE_GROUP)")
    figures = quota_figures(message or "") if reason == FailureReason.QUOTA_IMPOSSIBLE else None
    if figures is not None:
        text = short_message(figures.describe())  # ARM's own words say less, in more characters
    return ArmFailure(
        code=code or fallback_code(status),
        message=text or "no message",
        retryable=retryable,
        retry_after_seconds=_RETRY_AFTER.get(reason) if retryable else None,
        reason=reason,
    )
