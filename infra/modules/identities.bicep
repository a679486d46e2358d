// Two user-assigned identities: the function app's (manages container groups) and the worker's
// (writes one blob container, pulls one image). Their rights are granted in access.bicep.
param location string
param tags object
param functionIdentityName string
param workerIdentityName string

resource functionIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: functionIdentityName
  location: location
  tags: tags
}

resource workerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: workerIdentityName
  location: location
  tags: tags
}

output functionIdentityName string = functionIdentity.name
output workerIdentityName string = workerIdentity.name
