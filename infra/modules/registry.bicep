// The registry for the worker image. No admin user: ACI pulls with the worker identity (AcrPull),
// the predeploy hook builds with the deployer's own Entra sign-in (`az acr build`).
param location string
param tags object
param registryName string

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
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
