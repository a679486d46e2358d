// The whole system in one resource group: `azd up` deploys it (docs/deploy.md).
// Subscription scope only to create the resource group; everything else is in modules scoped to it.
targetScope = 'subscription'

@minLength(1)
@maxLength(48)
@description('azd environment name: the resource group is rg-<name>; resource names derive from it.')
param environmentName string

@minLength(1)
@description('Region for every resource. It must offer Flex Consumption and Container Instances.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@secure()
@description('HMAC key for per-job callback tokens. azd generates it once per environment and keeps it in .azure/<env>/config.json; rotation is in docs/deploy.md.')
@metadata({
  azd: {
    type: 'generate'
    config: {
      length: 64
    }
  }
})
param callbackSigningKey string

@secure()
@description('HMAC key that signs completion webhooks (X-Signature). azd generates it once per environment, like the callback key; receivers get it from Key Vault (docs/deploy.md).')
@metadata({
  azd: {
    type: 'generate'
    config: {
      length: 64
    }
  }
})
param notifySigningKey string

@secure()
@description('YOUTUBE_COOKIES: a Netscape cookies.txt for the worker (azd env set YOUTUBE_COOKIES "$(cat cookies.txt)"); empty: none. Stored in Key Vault.')
param youtubeCookies string = ''

@secure()
@description('WORKER_PROXY_URL: http(s):// or socks5:// proxy for the worker\'s downloads, credentials allowed; empty: none. Stored in Key Vault.')
param workerProxyUrl string = ''

@description('YTDLP_EXTRACTOR_ARGS: yt-dlp --extractor-args groups, space-separated (e.g. youtube:player_client=default,mweb).')
param ytdlpExtractorArgs string = ''

@description('RETRY_BOT_CHECK: a bot_check failure is tried again in a fresh container group (another egress IP).')
param retryBotCheck bool = true

@description('JOB_RETENTION_DAYS: finished jobs, their blobs and records are removed after this many days.')
@minValue(1)
@maxValue(3650)
param jobRetentionDays int = 30

@description('Worker image (registry/repository:tag). Empty until the predeploy hook has built one; then azd keeps it in the environment.')
param workerImage string = ''

@description('Repository of the worker image in the registry.')
param workerImageRepository string = 'video-worker'

@description('ALLOWED_HOSTS: comma list of hosts users may download from; a leading dot allows subdomains.')
param allowedHosts string = 'youtube.com,.youtube.com,youtu.be,youtube-nocookie.com,.youtube-nocookie.com'

@description('vCPU per worker container group.')
param workerCpu string = '1'

@description('Memory (GB) per worker container group.')
param workerMemoryGb string = '1.5'

@minValue(60)
param jobDeadlineSeconds int = 7200

@minValue(5)
param heartbeatTimeoutSeconds int = 600

@minValue(0)
param progressIntervalSeconds int = 20

@minValue(1)
@maxValue(20)
param provisionMaxAttempts int = 4

@description('Largest download a job may produce, in bytes (a string: it exceeds 32 bits).')
param maxDownloadBytes string = '8589934592'

@allowed([
  'stop'
  'delete'
])
param failedGroupPolicy string = 'stop'

@minValue(0)
param failedGroupRetentionSeconds int = 86400

@description('NCRONTAB schedule of the sweeper.')
param sweepSchedule string = '0 */10 * * * *'

@minValue(1)
@maxValue(50)
@description('MAX_PARALLEL_JOBS: container groups one batch or playlist runs at a time.')
param maxParallelJobs int = 3

@minValue(1)
@maxValue(500)
@description('MAX_RUNNING_JOBS: container groups the whole service runs at once (size it within the ACI quota).')
param maxRunningJobs int = 20

@minValue(1)
@maxValue(200)
@description('MAX_BATCH_URLS: most URLs in one batch request.')
param maxBatchUrls int = 25

@minValue(1)
@maxValue(200)
@description('MAX_PLAYLIST_ITEMS: most playlist entries downloaded (also the default maxItems).')
param maxPlaylistItems int = 25

@description('DEDUPLICATE: without an Idempotency-Key, the same URL and options map to the same job.')
param deduplicate bool = false

@allowed(['key', 'entra'])
@description('AUTH_MODE: key (function keys, one kind of caller) or entra (sign-in with Microsoft Entra ID, jobs per user; docs/deploy.md).')
param authMode string = 'key'

@description('Entra mode: the application (client) ID of the app registration users sign in to (docs/deploy.md, "Users"). Required when authMode is entra.')
param entraClientId string = ''

@minValue(1)
@maxValue(10000)
@description('MAX_ACTIVE_JOBS_PER_USER: queued + running jobs (batch items counted) one user may have (entra mode).')
param maxActiveJobsPerUser int = 50

@minValue(0)
@maxValue(500)
@description('MAX_RUNNING_JOBS_PER_USER: MAX_RUNNING_JOBS slots one user may hold at once; 0 = no per-user limit.')
param maxRunningJobsPerUser int = 0

@minValue(1)
@maxValue(10)
@description('JOB_MAX_ATTEMPTS: worker attempts per job, each in a fresh container group, for retryable failures.')
param jobMaxAttempts int = 3

@minValue(0)
@maxValue(3600)
@description('JOB_RETRY_BACKOFF_SECONDS: pause before a job\'s second attempt, doubled for each further one.')
param jobRetryBackoffSeconds int = 30

@minValue(0)
@maxValue(168)
@description('SHARE_LINK_HOURS: lifetime of the read-only share link in the output; 0 turns it off.')
param shareLinkHours int = 24

@description('ACI_PRICE_PER_VCPU_SECOND: for the cost estimate in the output (check your region\'s price).')
param aciPricePerVcpuSecond string = '0.0000135'

@description('ACI_PRICE_PER_GB_SECOND: for the cost estimate in the output.')
param aciPricePerGbSecond string = '0.0000015'

@description('COST_CURRENCY: currency of the two prices.')
param costCurrency string = 'USD'

@minValue(40)
@maxValue(1000)
@description('Upper bound on function app instances (Flex Consumption).')
param maximumInstanceCount int = 40

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var outputContainerName = 'downloads'
// Workers write here only (per-blob SAS); verified blobs are copied into outputContainerName.
var stagingContainerName = 'staging'
// The job list's index table in the output account: the name videojob/adapters/job_index_table.py uses
// (JOB_INDEX_TABLE; the code reads no setting for it, tests/infra/test_access.py checks they match).
var jobIndexTableName = 'jobindex'
// A staged blob is deleted once no attempt can still be writing it: more days than the deadline.
var stagingRetentionDays = 1 + jobDeadlineSeconds / 86400
var deploymentContainerName = 'app-package'
var signingKeySecretName = 'callback-signing-key'
var notifyKeySecretName = 'notify-signing-key'
var youtubeCookiesSecretName = 'youtube-cookies'
var workerProxySecretName = 'worker-proxy-url'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identities 'modules/identities.bicep' = {
  name: 'identities'
  scope: rg
  params: {
    location: location
    tags: tags
    functionIdentityName: 'id-func-${resourceToken}'
    workerIdentityName: 'id-worker-${resourceToken}'
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    storageAccountName: 'st${resourceToken}'
    outputStorageAccountName: 'stout${resourceToken}'
    outputContainerName: outputContainerName
    stagingContainerName: stagingContainerName
    jobIndexTableName: jobIndexTableName
    deploymentContainerName: deploymentContainerName
    jobRetentionDays: jobRetentionDays
    stagingRetentionDays: stagingRetentionDays
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    location: location
    tags: tags
    registryName: 'cr${resourceToken}'
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    keyVaultName: 'kv-${resourceToken}'
    signingKeySecretName: signingKeySecretName
    callbackSigningKey: callbackSigningKey
    notifyKeySecretName: notifyKeySecretName
    notifySigningKey: notifySigningKey
    youtubeCookiesSecretName: youtubeCookiesSecretName
    youtubeCookies: youtubeCookies
    workerProxySecretName: workerProxySecretName
    workerProxyUrl: workerProxyUrl
  }
}

module access 'modules/access.bicep' = {
  name: 'access'
  scope: rg
  params: {
    functionIdentityName: identities.outputs.functionIdentityName
    workerIdentityName: identities.outputs.workerIdentityName
    storageAccountName: storage.outputs.storageAccountName
    outputStorageAccountName: storage.outputs.outputStorageAccountName
    outputContainerName: outputContainerName
    stagingContainerName: stagingContainerName
    jobIndexTableName: jobIndexTableName
    registryName: registry.outputs.registryName
    keyVaultName: keyVault.outputs.keyVaultName
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    location: location
    tags: tags
    planName: 'plan-${resourceToken}'
    functionAppName: 'func-${resourceToken}'
    maximumInstanceCount: maximumInstanceCount
    functionIdentityName: identities.outputs.functionIdentityName
    workerIdentityName: identities.outputs.workerIdentityName
    storageAccountName: storage.outputs.storageAccountName
    outputStorageAccountName: storage.outputs.outputStorageAccountName
    outputContainerName: outputContainerName
    stagingContainerName: stagingContainerName
    deploymentContainerName: deploymentContainerName
    registryName: registry.outputs.registryName
    appInsightsName: monitoring.outputs.appInsightsName
    signingKeySecretUri: keyVault.outputs.signingKeySecretUri
    notifyKeySecretUri: keyVault.outputs.notifyKeySecretUri
    youtubeCookiesSecretUri: keyVault.outputs.youtubeCookiesSecretUri
    workerProxySecretUri: keyVault.outputs.workerProxySecretUri
    ytdlpExtractorArgs: ytdlpExtractorArgs
    retryBotCheck: retryBotCheck
    jobRetentionDays: jobRetentionDays
    workerImage: empty(workerImage) ? '${registry.outputs.loginServer}/${workerImageRepository}:latest' : workerImage
    allowedHosts: allowedHosts
    workerCpu: workerCpu
    workerMemoryGb: workerMemoryGb
    jobDeadlineSeconds: jobDeadlineSeconds
    heartbeatTimeoutSeconds: heartbeatTimeoutSeconds
    progressIntervalSeconds: progressIntervalSeconds
    provisionMaxAttempts: provisionMaxAttempts
    maxDownloadBytes: maxDownloadBytes
    failedGroupPolicy: failedGroupPolicy
    failedGroupRetentionSeconds: failedGroupRetentionSeconds
    sweepSchedule: sweepSchedule
    maxParallelJobs: maxParallelJobs
    maxRunningJobs: maxRunningJobs
    maxBatchUrls: maxBatchUrls
    maxPlaylistItems: maxPlaylistItems
    deduplicate: deduplicate
    authMode: authMode
    entraClientId: entraClientId
    maxActiveJobsPerUser: maxActiveJobsPerUser
    maxRunningJobsPerUser: maxRunningJobsPerUser
    jobMaxAttempts: jobMaxAttempts
    jobRetryBackoffSeconds: jobRetryBackoffSeconds
    shareLinkHours: shareLinkHours
    aciPricePerVcpuSecond: aciPricePerVcpuSecond
    aciPricePerGbSecond: aciPricePerGbSecond
    costCurrency: costCurrency
  }
  // Key Vault references and identity-based storage resolve at app start: the grants must exist first.
  dependsOn: [
    access
  ]
}

// azd stores these in .azure/<env>/.env; the predeploy hook reads them.
output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.functionAppName
output FUNCTION_APP_URL string = functionApp.outputs.functionAppUrl
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.registryName
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output WORKER_IMAGE_REPOSITORY string = workerImageRepository
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.storageAccountName
output AZURE_OUTPUT_STORAGE_ACCOUNT_NAME string = storage.outputs.outputStorageAccountName
output OUTPUT_CONTAINER string = outputContainerName
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.keyVaultName
output NOTIFY_KEY_SECRET_NAME string = notifyKeySecretName
output YOUTUBE_COOKIES_SECRET_NAME string = youtubeCookiesSecretName
output WORKER_PROXY_SECRET_NAME string = workerProxySecretName
