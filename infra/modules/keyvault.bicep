// Key Vault holding the callback and webhook signing keys and the worker's YouTube cookies and proxy URL.
// RBAC only (no access policies); the function app's
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
param youtubeCookiesSecretName string

@description('A Netscape cookies.txt, or empty (no cookies). From the azd environment (YOUTUBE_COOKIES).')
@secure()
param youtubeCookies string
param workerProxySecretName string

@description('http(s):// or socks5:// proxy URL for the worker, or empty. From the azd environment (WORKER_PROXY_URL).')
@secure()
param workerProxyUrl string

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

// Empty unless the azd environment holds a value: each provision writes the parameter, so the value
// lives in the azd environment, not only here (README, "YouTube from the cloud").
resource youtubeCookiesSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: youtubeCookiesSecretName
  properties: {
    value: youtubeCookies
    contentType: 'text/plain; Netscape cookies.txt for the worker (YOUTUBE_COOKIES)'
  }
}

resource workerProxySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: workerProxySecretName
  properties: {
    value: workerProxyUrl
    contentType: 'text/plain; the worker\'s proxy URL, may hold credentials (WORKER_PROXY_URL)'
  }
}

output keyVaultName string = vault.name
// Versioned on purpose: a new key changes the app setting, which restarts the app onto the new key.
output signingKeySecretUri string = signingKey.properties.secretUriWithVersion
output notifyKeySecretUri string = notifyKey.properties.secretUriWithVersion
output youtubeCookiesSecretUri string = youtubeCookiesSecret.properties.secretUriWithVersion
output workerProxySecretUri string = workerProxySecret.properties.secretUriWithVersion
