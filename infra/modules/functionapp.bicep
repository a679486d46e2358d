// The function app: Flex Consumption, Linux, Python 3.11, one user-assigned identity for
// everything (host storage, deployment package, Key Vault reference, telemetry, ARM calls).
param location string
param tags object
param planName string
param functionAppName string
param maximumInstanceCount int
param functionIdentityName string
param workerIdentityName string
param storageAccountName string
param outputStorageAccountName string
param outputContainerName string
param stagingContainerName string
param deploymentContainerName string
param registryName string
param appInsightsName string
param signingKeySecretUri string
param notifyKeySecretUri string
param youtubeCookiesSecretUri string
param workerProxySecretUri string
param ytdlpExtractorArgs string
param retryBotCheck bool
@minValue(1)
@maxValue(3650)
param jobRetentionDays int
param workerImage string
param allowedHosts string
param workerCpu string
param workerMemoryGb string
param jobDeadlineSeconds int
param heartbeatTimeoutSeconds int
param progressIntervalSeconds int
param provisionMaxAttempts int
param maxDownloadBytes string
param failedGroupPolicy string
param failedGroupRetentionSeconds int
param sweepSchedule string
param maxParallelJobs int
param maxRunningJobs int
param maxBatchUrls int
param maxPlaylistItems int
param deduplicate bool
@allowed(['key', 'entra'])
param authMode string
@description('Entra mode: the app registration users sign in to (its application ID).')
param entraClientId string
param maxActiveJobsPerUser int
param maxRunningJobsPerUser int
param jobMaxAttempts int
param jobRetryBackoffSeconds int
param shareLinkHours int
param aciPricePerVcpuSecond string
param aciPricePerGbSecond string
param costCurrency string

@description('azd finds the app to deploy to by this tag (services.api in azure.yaml).')
param serviceName string = 'api'

resource functionIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: functionIdentityName
}

resource workerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: workerIdentityName
}

// The host's account (runtime, keys, task hub, deployment package) and the outputs' (storage.bicep).
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource outputStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: outputStorageAccountName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${functionIdentity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    // Key Vault references resolve with this identity (there is no system-assigned one).
    keyVaultReferenceIdentity: functionIdentity.id
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: functionIdentity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No publishing passwords: azd deploys with the deployer's Entra token.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// Where the Functions host keeps its keys, stated rather than left to the default: blobs in the
// host's account (azure-webjobs-secrets). Not `keyvault`: the host writes its keys there, so the app
// would need Key Vault Secrets Officer on the vault, and with it could rewrite or delete the callback
// and webhook signing keys it only reads today (the host names its secrets at run time, so the role
// cannot be narrowed to them); a second vault would add a resource for no gain. The container is
// out of every SAS's reach: share links and worker SAS are signed with the output account's key, and
// the app's data roles there are on the output and staging containers only (storage.bicep, access.bicep).
var hostKeyStorage = 'blob'

// Functions runtime settings (not read by our code). Flex Consumption takes the runtime from
// functionAppConfig, so FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION are not set here.
var runtimeSettings = {
  AzureWebJobsStorage__accountName: storage.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: functionIdentity.properties.clientId
  // The host's function and master keys: see hostKeyStorage above.
  AzureWebJobsSecretStorageType: hostKeyStorage
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${functionIdentity.properties.clientId};Authorization=AAD'
  // azure-identity picks the app's user-assigned identity by this (DefaultAzureCredential).
  AZURE_CLIENT_ID: functionIdentity.properties.clientId
}

// Every setting our code reads (videojob.domain.settings.SETTING_NAMES), same names as
// local.settings.sample.json. tests/infra/test_settings_drift.py keeps the three in step.
var videojobSettings = {
  CONTAINER_BACKEND: 'aci'
  AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
  ACI_RESOURCE_GROUP: resourceGroup().name
  ACI_LOCATION: location
  WORKER_IMAGE: workerImage
  WORKER_IDENTITY_RESOURCE_ID: workerIdentity.id
  WORKER_IDENTITY_CLIENT_ID: workerIdentity.properties.clientId
  WORKER_CPU: workerCpu
  WORKER_MEMORY_GB: workerMemoryGb
  REGISTRY_SERVER: registry.properties.loginServer
  // Empty: ACI pulls the image with the worker identity (AcrPull), no registry password exists.
  REGISTRY_USERNAME: ''
  REGISTRY_PASSWORD: ''
  // The outputs' own account, never the host's: share links are signed with a key from this one.
  OUTPUT_ACCOUNT_URL: outputStorage.properties.primaryEndpoints.blob
  // Empty: Azurite only. In Azure no account key exists (shared-key access is off).
  OUTPUT_CONNECTION_STRING: ''
  OUTPUT_CONTAINER: outputContainerName
  // Workers write only here, through per-blob SAS the app signs; verified blobs are copied out.
  STAGING_CONTAINER: stagingContainerName
  CALLBACK_BASE_URL: 'https://${site.properties.defaultHostName}'
  CALLBACK_SIGNING_KEY: '@Microsoft.KeyVault(SecretUri=${signingKeySecretUri})'
  ALLOWED_HOSTS: allowedHosts
  ALLOW_PRIVATE_ADDRESSES: 'false'
  JOB_DEADLINE_SECONDS: string(jobDeadlineSeconds)
  // The same number drives the output account's lifecycle policy (storage.bicep).
  JOB_RETENTION_DAYS: string(jobRetentionDays)
  HEARTBEAT_TIMEOUT_SECONDS: string(heartbeatTimeoutSeconds)
  PROGRESS_INTERVAL_SECONDS: string(progressIntervalSeconds)
  PROGRESS_EVENT_MIN_SECONDS: '10'
  PROVISION_MAX_ATTEMPTS: string(provisionMaxAttempts)
  CLEANUP_BACKOFF_SECONDS: '5'
  MAX_DOWNLOAD_BYTES: maxDownloadBytes
  FAILED_GROUP_POLICY: failedGroupPolicy
  FAILED_GROUP_RETENTION_SECONDS: string(failedGroupRetentionSeconds)
  SWEEP_SCHEDULE: sweepSchedule
  MAX_PARALLEL_JOBS: string(maxParallelJobs)
  MAX_RUNNING_JOBS: string(maxRunningJobs)
  MAX_BATCH_URLS: string(maxBatchUrls)
  MAX_PLAYLIST_ITEMS: string(maxPlaylistItems)
  DEDUPLICATE: string(deduplicate)
  JOB_MAX_ATTEMPTS: string(jobMaxAttempts)
  JOB_RETRY_BACKOFF_SECONDS: string(jobRetryBackoffSeconds)
  // Share links are user-delegation SAS signed with this app's identity (Storage Blob Delegator).
  SHARE_LINK_HOURS: string(shareLinkHours)
  NOTIFY_SIGNING_KEY: '@Microsoft.KeyVault(SecretUri=${notifyKeySecretUri})'
  ACI_PRICE_PER_VCPU_SECOND: aciPricePerVcpuSecond
  ACI_PRICE_PER_GB_SECOND: aciPricePerGbSecond
  COST_CURRENCY: costCurrency
  // The worker's way past YouTube's bot check (README, "YouTube from the cloud"). The two secrets
  // exist even when empty, so both references always resolve.
  YOUTUBE_COOKIES: '@Microsoft.KeyVault(SecretUri=${youtubeCookiesSecretUri})'
  WORKER_PROXY_URL: '@Microsoft.KeyVault(SecretUri=${workerProxySecretUri})'
  YTDLP_EXTRACTOR_ARGS: ytdlpExtractorArgs
  RETRY_BOT_CHECK: string(retryBotCheck)
  // Users (README "Users"): in entra mode App Service Authentication signs callers in (authsettingsV2 below).
  AUTH_MODE: authMode
  MAX_ACTIVE_JOBS_PER_USER: string(maxActiveJobsPerUser)
  MAX_RUNNING_JOBS_PER_USER: string(maxRunningJobsPerUser)
}

// A child resource rather than siteConfig.appSettings: CALLBACK_BASE_URL needs the site's own hostname.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(runtimeSettings, videojobSettings)
}

// Entra mode (README "Users"): App Service Authentication signs callers in with Microsoft Entra ID
// in front of the app, which then trusts the x-ms-client-principal* headers (WEBSITE_AUTH_ENABLED).
// Unauthenticated API calls get 401 from the platform (no login redirect for an API). Excluded:
// the page (it holds no secret and sends people to /.auth/login/aad) and the worker callback (the
// worker holds a per-attempt token, not an Entra one); "/<path>/*" is the wildcard form Microsoft
// gives for excludedPaths (MicrosoftDocs/azure-docs issue 86514). The app has no health route.
// Accepted tokens: ID tokens of the sign-in (audience = client ID) and access tokens for the
// app's API (api://<client ID>), which the CLI requests.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (authMode == 'entra') {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: [
        '/api/app'
        '/api/jobs/*'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            entraClientId
            'api://${entraClientId}'
          ]
        }
      }
    }
  }
}

output functionAppName string = site.name
output functionAppUrl string = 'https://${site.properties.defaultHostName}'
