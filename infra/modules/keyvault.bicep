// Key Vault holding the callback and webhook signing keys. RBAC only (no access policies); the function app's
// identity reads it through a Key Vault reference (Key Vault Secrets User, granted in access.bicep).
param location string
param tags object
param keyVaultName string
param signingKeySecretName string

@secure()
param callbackSigningKey string
param notifyKeySecretName string

@secure()
param notifySigningKey string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource signingKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: signingKeySecretName
  properties: {
    value: callbackSigningKey
    contentType: 'text/plain; HMAC-SHA256 key for per-job callback tokens'
  }
}

resource notifyKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: notifyKeySecretName
  properties: {
    value: notifySigningKey
    contentType: 'text/plain; HMAC-SHA256 key for completion webhook signatures'
  }
}

output keyVaultName string = vault.name
// Versioned on purpose: a new key changes the app setting, which restarts the app onto the new key.
output signingKeySecretUri string = signingKey.properties.secretUriWithVersion
output notifyKeySecretUri string = notifyKey.properties.secretUriWithVersion
