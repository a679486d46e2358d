// Two storage accounts, shared-key access off in both (everything authenticates with Entra identities):
// - the host's (`storage`): the Functions runtime and its keys (azure-webjobs-secrets), the Durable task
//   hub, the Flex deployment package. The app identity owns its blobs, as the Functions host needs.
// - the outputs' (`outputStorage`): the download outputs, in two containers, and the job list's
//   index table (`jobIndexTableName`, no payload: instance ids, kinds, states, times). Workers write into
//   `staging`, each only through a per-blob SAS for names its orchestration chose; the app verifies
//   what was staged (size, sha256) and copies it into the output container, which no worker can
//   reach, so a share link serves exactly the verified bytes (issue 19). Every SAS (share links and
//   worker SAS alike) is a user-delegation SAS signed with a key from THIS account, and a SAS grants
//   at most its signer's rights here: the app's, on these two containers (access.bicep). So no SAS
//   can ever reach the host's keys, the task hub's messages or the deployment package (issue 9).
// Nothing is kept forever: the lifecycle policy below deletes outputs `jobRetentionDays` after they
// were written and staging leftovers once no job can still be writing them (issue 18).
param location string
param tags object
param storageAccountName string
param outputStorageAccountName string
param outputContainerName string
param stagingContainerName string
@description('The job list\'s index table in the output account (videojob/adapters/job_index_table.py).')
param jobIndexTableName string

@description('Days a finished job\'s blobs (outputs and result record) are kept in the output container.')
@minValue(1)
@maxValue(3650)
param jobRetentionDays int

@description('Days after which a staged blob is deleted: longer than any job may still be writing it.')
@minValue(1)
param stagingRetentionDays int
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

// Workers' only place to write (per-blob SAS); the app copies verified blobs out of it.
resource stagingContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: outputBlobService
  name: stagingContainerName
  properties: {
    publicAccess: 'None'
  }
}

// The job list's index (issue 18). Created here so the app's role can be scoped to this one table
// (access.bicep) instead of the whole table service.
resource outputTableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: outputStorage
  name: 'default'
}

resource jobIndexTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: outputTableService
  name: jobIndexTableName
}

// Retention, the way Azure does it: a lifecycle management policy, which the platform applies in
// periodic runs (a new or changed policy can take up to 24 hours to go into effect). Deleted blobs
// stay soft-deleted for deleteRetentionPolicy.days (7) more. Age is counted from the last
// modification, not the creation: a blob reaches the output container only when its job has
// finished (the verified copy), so its last write is the finish of the run that produced it; a
// later run that rewrites the same name restarts the clock instead of losing its output early.
// The delete action does not work in an immutable container: no immutability policy here.
resource outputLifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: outputStorage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-finished-jobs'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              // A prefix starts with the container name.
              prefixMatch: [
                '${outputContainerName}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: jobRetentionDays
                }
              }
            }
          }
        }
        {
          name: 'expire-staging'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${stagingContainerName}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: stagingRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

output storageAccountName string = storage.name
output outputStorageAccountName string = outputStorage.name
