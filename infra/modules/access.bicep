// Every role definition and role assignment of the system, in one place to review.
// tests/infra/test_access.py checks the rules stated here; keep each assignment's built-in role
// name (a key of roles.json), custom-role symbol, principal and scope literal so the test (and a
// reviewer) can read them. Built-in role GUIDs live in roles.json only: tests/infra checks each one
// against the published list of Azure built-in roles (tests/infra/data/builtin_roles.json).
//
// Function app identity: manage container groups in this resource group (custom role), assign the
// worker identity and nothing else (custom role on that identity), plus what the Functions runtime
// and Durable task hub need on the HOST storage account, the signing-key secrets and telemetry, and
// on the OUTPUT account: a user-delegation key (Storage Blob Delegator) and read/write/delete on the
// output and staging containers (Storage Blob Data Contributor), to sign per-blob SAS for workers,
// copy verified blobs from staging to output and sign read-only share links, and read/write on the
// job list's index table (Storage Table Data Contributor on that table). No data role of the app
// covers both accounts (storage.bicep says why).
// Worker identity: pull from the registry, nothing else. It has no role on any storage account: a
// worker writes only through the per-blob SAS its job's orchestration hands it (issue 19).
param functionIdentityName string
param workerIdentityName string
param storageAccountName string
param outputStorageAccountName string
param outputContainerName string
param stagingContainerName string
param jobIndexTableName string
param registryName string
param keyVaultName string
param appInsightsName string

// Built-in role name -> role definition GUID, the one place these GUIDs are written.
var builtInRoles = loadJsonContent('roles.json')

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

// The outputs' account: the output and staging containers and the job index table, nothing else.
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

resource stagingContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: outputBlobService
  name: stagingContainerName
}

resource outputTableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: outputStorage
  name: 'default'
}

resource jobIndexTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: outputTableService
  name: jobIndexTableName
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
  name: guid(storage.id, functionIdentity.id, builtInRoles['Storage Blob Data Owner'])
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles['Storage Blob Data Owner'])
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource funcStorageQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionIdentity.id, builtInRoles['Storage Queue Data Contributor'])
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles['Storage Queue Data Contributor'])
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource funcStorageTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionIdentity.id, builtInRoles['Storage Table Data Contributor'])
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles['Storage Table Data Contributor'])
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource funcSigningKeyReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionIdentity.id, builtInRoles['Key Vault Secrets User'])
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles['Key Vault Secrets User'])
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource funcTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionIdentity.id, builtInRoles['Monitoring Metrics Publisher'])
  scope: appInsights
  properties: {
    // Entra-authenticated telemetry ingestion
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles['Monitoring Metrics Publisher'])
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The output account. User-delegation SAS are signed with a key this identity asks the OUTPUT
// account for, and a SAS grants at most what its signer may do there (and what its own permissions
// say): the share links the app signs say read, the per-blob SAS it signs for a worker say create
// and write on one staging blob name the orchestration chose. The delegator role can only be
// granted on an account (the key is account-wide); the separate account is what keeps every SAS
// away from the host's blobs.
resource funcOutputDelegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outputStorage.id, functionIdentity.id, builtInRoles['Storage Blob Delegator'])
  scope: outputStorage
  properties: {
    // generateUserDelegationKey only, no data access
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles['Storage Blob Delegator'])
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Read, write and delete on the two containers of the output account, each granted on its
// container: the app checks and hashes what a worker staged, copies verified blobs into the output
// container (workers cannot reach it), deletes staging leftovers, and signs SAS within these rights.
// Contributor includes read, so no separate reader assignment is needed.
resource funcOutputContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outputContainer.id, functionIdentity.id, builtInRoles['Storage Blob Data Contributor'])
  scope: outputContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles['Storage Blob Data Contributor'])
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource funcStagingContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stagingContainer.id, functionIdentity.id, builtInRoles['Storage Blob Data Contributor'])
  scope: stagingContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles['Storage Blob Data Contributor'])
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The job list's index (videojob/adapters/job_index_table.py): query, insert, update and delete its rows.
// A role assignment can be scoped to a single table (Microsoft Learn, "Assign an Azure role for
// access to table data"), so the app gets no right on any other table of the output account.
resource funcJobIndexTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(jobIndexTable.id, functionIdentity.id, builtInRoles['Storage Table Data Contributor'])
  scope: jobIndexTable
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles['Storage Table Data Contributor'])
    principalId: functionIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---- Worker identity: image pull only ----
// No storage role: a hostile worker with a standing write right on the output container could
// overwrite another job's finished blob (issue 19). It gets a per-blob SAS instead.

resource workerImagePull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, workerIdentity.id, builtInRoles['AcrPull'])
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles['AcrPull'])
    principalId: workerIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}
