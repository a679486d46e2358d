// Two storage accounts, shared-key access off in both (everything authenticates with Entra identities):
// - the host's (`storage`): the Functions runtime and its keys (azure-webjobs-secrets), the Durable task
//   hub, the Flex deployment package. The app identity owns its blobs, as the Functions host needs.
// - the outputs' (`outputStorage`): the download outputs only. Share links are user-delegation SAS
//   signed with a key from THIS account, and a SAS grants at most its signer's rights here: read on
//   the output container (access.bicep). So no share link can ever reach the host's keys, the task
//   hub's messages or the deployment package, whatever blob a worker names (issue 9).
param location string
param tags object
param storageAccountName string
param outputStorageAccountName string
param outputContainerName string
param deploymentContainerName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource outputStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: outputStorageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource outputBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: outputStorage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource outputContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: outputBlobService
  name: outputContainerName
  properties: {
    publicAccess: 'None'
  }
}

output storageAccountName string = storage.name
output outputStorageAccountName string = outputStorage.name
