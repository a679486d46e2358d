// The registry for the worker image. No admin user: ACI pulls with the worker identity (AcrPull),
// the predeploy hook builds with the deployer's own Entra sign-in (`az acr build`).
param location string
param tags object
param registryName string

// 2025-04-01: the first stable API version with `anonymousPullEnabled` (2023-07-01 has no such
// property, so setting it there was not a setting at all).
resource registry 'Microsoft.ContainerRegistry/registries@2025-04-01' = {
  name: registryName
  location: location
  tags: tags
  sku: {
    name: 'Basic'
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

output registryName string = registry.name
output loginServer string = registry.properties.loginServer
