"""ARM answers as Azure itself shows them: only the JSON shapes are copied, each with its source.

The names, ids and subscription are replaced by this suite's (`arm_transport`); codes, messages,
states and event shapes are kept as published.
"""

from __future__ import annotations

from typing import Any

from tests.backends.arm_transport import group_path


def failed_mount_group(name: str) -> dict[str, Any]:
    """A group whose Azure Files volume could not be mounted: provisioning Failed, the group still
    Pending, the container Waiting with only its (successful) pull events; the cause is in the
    group-level events alone.

    Source: Azure/azure-rest-api-specs, specification/containerinstance/resource-manager/
    Microsoft.ContainerInstance/stable/2021-10-01/examples/ContainerGroupsGet_Failed.json
    (response 200 body; ports, IP address and volumes left out).
    """
    return {
        "id": group_path(name),
        "location": "WestUs",
        "name": name,
        "properties": {
            "containers": [
                {
                    "name": "worker",
                    "properties": {
                        "command": [],
                        "environmentVariables": [],
                        "image": "nginx",
                        "instanceView": {
                            "restartCount": 0,
                            "currentState": {
                                "state": "Waiting", "startTime": "2017-08-08T00:09:10Z", "detailStatus": ""
                            },
                            "events": [
                                {"count": 1, "firstTimestamp": "2017-08-08T00:09:01Z",
                                 "lastTimestamp": "2017-08-08T00:09:01Z", "message": 'pulling image "nginx"',
                                 "name": "Pulling", "type": "Normal"},
                                {"count": 1, "firstTimestamp": "2017-08-08T00:09:10Z",
                                 "lastTimestamp": "2017-08-08T00:09:10Z",
                                 "message": 'Successfully pulled image "nginx"', "name": "Pulled", "type": "Normal"},
                            ],
                        },
                        "resources": {"requests": {"cpu": 1, "memoryInGB": 1.5}},
                    },
                }
            ],
            "instanceView": {
                "events": [
                    {"count": 1, "firstTimestamp": "2017-10-08T00:19:10Z", "lastTimestamp": "2017-10-08T00:19:10Z",
                     "message": "Output: mount error(2): Permission denied", "name": "FailedMount", "type": "Normal"}
                ],
                "state": "Pending",
            },
            "osType": "Linux",
            "provisioningState": "Failed",
        },
        "type": "Microsoft.ContainerInstance/containerGroups",
    }


def group_without_instance_view(name: str, provisioning_state: str) -> dict[str, Any]:
    """A group in a provisioning state after which ACI does nothing more, and no instance view.

    States: `ContainerGroupProvisioningState` in Azure/azure-sdk-for-python, sdk/containerinstance/
    azure-mgmt-containerinstance/azure/mgmt/containerinstance/models/_enums.py (Canceled,
    NotAccessible); the body is the list example's shape without `instanceView` (Azure/azure-rest-
    api-specs, .../stable/2023-05-01/examples/ContainerGroupsList.json).
    """
    return {
        "id": group_path(name),
        "location": "WestUs",
        "name": name,
        "properties": {
            "containers": [
                {
                    "name": "worker",
                    "properties": {"image": "nginx", "resources": {"requests": {"cpu": 1, "memoryInGB": 1.5}}},
                }
            ],
            "osType": "Linux",
            "provisioningState": provisioning_state,
        },
        "type": "Microsoft.ContainerInstance/containerGroups",
    }


def authorization_failed(code: str = "AuthorizationFailed") -> dict[str, Any]:
    """403 right after a deployment, while a role assignment propagates.

    Source: the ARM error body as Microsoft Learn quotes it (MicrosoftDocs/azure-docs, Azure
    Machine Learning feature store troubleshooting, "RBAC permission errors"); the same text is
    used by `LinkedAuthorizationFailed` for the linked scope.
    """
    return {
        "error": {
            "code": code,
            "message": "The client '00000000-0000-0000-0000-00000000abcd' with object id "
            "'00000000-0000-0000-0000-00000000abcd' does not have authorization to perform action "
            "'Microsoft.ContainerInstance/containerGroups/write' over scope "
            f"'{group_path('dl-x')}' or the scope is invalid. "
            "If access was recently granted, please refresh your credentials.",
        }
    }


RESOURCE_GROUP_NOT_FOUND: dict[str, Any] = {
    # 404 for any request under a resource group that does not exist, as a real
    # `com.azure.core.management.exception.ManagementException` quotes it (Azure toolkit for Java,
    # ResourceGroup.refreshRemote); many ARM clients' tests carry the same body.
    "error": {"code": "ResourceGroupNotFound", "message": "Resource group 'rg-test' could not be found."}
}

# Registry credential errors of a create, as the Container Instances troubleshooting page shows
# them (Microsoft Learn, "Troubleshoot deploying a container group from Azure Container Registry
# by using a managed identity"), `Resitry` spelled as the service does.
REGISTRY_CREDENTIAL_ERRORS: dict[str, str] = {
    "InvalidImageRegistryIdentity": "The identity in the 'imageRegistryCredentials' of container group "
    "'dl-x' not found in container group identity list.",
    "AmbiguousImageResitryCredentialType": "The registry credential type in the 'imageRegistryCredentials' of "
    "container group 'dl-x' cannot be detected. Please set exactly one of username or identity",
    "InvalidImageRegistryCredentialType": "Identity in 'imageRegistryCredentials' of container group 'dl-x' is "
    "not supported.",
}


# --- Quota refusals of a create (issue 18.5) -------------------------------------------------------
# ACI's wording, as Azure's own troubleshooting pages quote it:
# - MicrosoftDocs/SupportArticles-docs, support/azure/azure-container-instances/configuration-setup/
#   spot-container-group-quota-reached-error.md at commit 86fca23b10a774d8e708e17005c2f69b09bfe89e
#   ("Code: ContainerGroupQuotaReached", the Spot message below, word for word);
# - the same repository, .../configuration-setup/service-unavailable-container-group-quota-exceeded.md
#   at commit 03bc52bef875f55ec902389faf6de271f8661346 (`ServiceUnavailable`, limit 0; the page's
#   '<region>' placeholder kept);
# - a user's report of a count quota at its limit, MicrosoftDocs/azure-docs issue #51738
#   ("We get this message when we try to start an 11th concurrent container").
QUOTA_CODE = "ContainerGroupQuotaReached"
SPOT_QUOTA_MESSAGE = (
    "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'StandardSpotCores' "
    "exceeded in region 'westeurope'. Limit: '100', Usage: '12' Requested: '90'."
)
"""Usage 12 + 90 requested is above 100, yet 90 alone fits: it frees when others end."""
COUNT_QUOTA_AT_LIMIT_MESSAGE = (
    "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'StandardCores' "
    "exceeded in region 'eastus'. Limit: '10', Usage: '10' Requested: '1'."
)
ZERO_QUOTA_SERVICE_UNAVAILABLE_MESSAGE = (
    "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'ContainerGroups' "
    "exceeded in region '<region>'. Limit: '0', Usage: '0' Requested: '1'."
)


def quota_refusal_message(quota: str, region: str, limit: int, usage: int, requested: int) -> str:
    """The Spot page's sentence with other figures: no page quotes a request above a limit above 0
    (the case issue 18.5 is about, e.g. a 2-core worker under a 1-core quota), so its figures are ours."""
    return (f"Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota '{quota}' "
            f"exceeded in region '{region}'. Limit: '{limit}', Usage: '{usage}' Requested: '{requested}'.")


def quota_refusal(message: str, code: str = QUOTA_CODE) -> dict[str, Any]:
    """The ARM error body of a refused create."""
    return {"error": {"code": code, "message": message}}
