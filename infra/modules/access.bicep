// Every role definition and role assignment of the system, in one place to review.
// tests/infra/test_access.py checks the rules stated here; keep each assignment's role GUID or
// custom-role symbol, principal and scope literal so the test (and a reviewer) can read them.
//
// Function app identity: manage container groups in this resource group (custom role), assign the
// worker identity and nothing else (custom role on that identity), plus what the Functions runtime
// and Durable task hub need on the HOST storage account, the signing-key secrets and telemetry, and
// what share links need on the OUTPUT account: a user-delegation key (Storage Blob Delegator) and
// read on the output container. No data role of the app covers both accounts (storage.bicep says why).
// Worker identity: write blobs to the output container, pull from the registry. No ARM rights.
param functionIdentityName string
param workerIdentityName string
param storageAccountName string
param outputStorageAccountName string
param outputContainerName string
param registryName string
param keyVaultName string
param appInsightsName string

resource functionIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: functionIdentityName
}

resource workerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: workerIdentityName
}

// The host's account: runtime, host keys, task hub, deployment package.
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// The outputs' account: nothing but the output container.
resource outputStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: outputStorageAccountName
}

resource outputBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: outputStorage
  name: 'default'
}

resource outputContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: outputBlobService
  name: outputContainerName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// ---- Custom roles (assignable in this resource group only) ----

resource containerGroupOperatorRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'video-downloader', 'container-group-operator')
  properties: {
    roleName: 'Video downloader container group operator (${resourceGroup().name})'
    description: 'Create, inspect, stop and delete container groups, read their logs. Nothing else.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.ContainerInstance/containerGroups/*'
        ]
        notActions: []
      }
    ]
  }
}

resource identityAssignerRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'video-downloader', 'worker-identity-assigner')
  properties: {
    roleName: 'Video downloader worker identity assigner (${resourceGroup().name})'
    description: 'Attach a user-assigned identity to a container group. Assigned on the worker identity only.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action'
        ]
        notActions: []
      }
    ]
  }
}

// ---- Function app identity ----

resource funcContainerGroups 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, functionIdentity.id, containerGroupOperatorRole.id)
  scope: resourceGroup()
  properties: {
    roleDefinitionId: containerGroupOperatorRole.id
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource funcAssignWorkerIdentity 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workerIdentity.id, functionIdentity.id, identityAssignerRole.id)
  scope: workerIdentity
  properties: {
    roleDefinitionId: identityAssignerRole.id
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Functions host and Durable task hub (blobs, queues, tables) with AzureWebJobsStorage__credential,
// on the host's account only. Its blob containers (azure-webjobs-hosts/-secrets, the task hub's
// leases and large messages) are created by the host at run time, so the grant is account-wide there.
resource funcStorageBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionIdentity.id, 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
  scope: storage
  properties: {
    // Storage Blob Data Owner
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource funcStorageQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionIdentity.id, '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
  scope: storage
  properties: {
    // Storage Queue Data Contributor
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource funcStorageTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionIdentity.id, '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
  scope: storage
  properties: {
    // Storage Table Data Contributor
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource funcSigningKeyReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionIdentity.id, '4633458b-17de-408a-b874-0445c86b69e6')
  scope: vault
  properties: {
    // Key Vault Secrets User
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource funcTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionIdentity.id, '3913510d-42f4-4e42-8a64-420c390055eb')
  scope: appInsights
  properties: {
    // Monitoring Metrics Publisher (Entra-authenticated telemetry ingestion)
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Share links: user-delegation SAS, signed with a key this identity asks the OUTPUT account for. A
// SAS grants at most what its signer may do there: read, on the output container, and nothing else
// in that account. The delegator role can only be granted on an account (the key is account-wide);
// the separate account is what keeps it away from the host's blobs. The blob check before a job
// succeeds (check_output_blob: Get Blob Properties) needs the same read.
resource funcShareLinkDelegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outputStorage.id, functionIdentity.id, 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a')
  scope: outputStorage
  properties: {
    // Storage Blob Delegator (generateUserDelegationKey only, no data access)
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a')
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource funcShareLinkReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outputContainer.id, functionIdentity.id, '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1')
  scope: outputContainer
  properties: {
    // Storage Blob Data Reader
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1')
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---- Worker identity: data plane only, each on one resource ----

resource workerOutputWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outputContainer.id, workerIdentity.id, 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
  scope: outputContainer
  properties: {
    // Storage Blob Data Contributor
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
    principalId: workerIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource workerImagePull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, workerIdentity.id, '7f951dda-4ed3-4680-a7ca-43d2bd2b4d5a')
  scope: registry
  properties: {
    // AcrPull
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '7f951dda-4ed3-4680-a7ca-43d2bd2b4d5a')
    principalId: workerIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}
