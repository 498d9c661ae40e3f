// The app's one user-assigned managed identity. Every data-plane grant in this template (storage,
// Cosmos DB, Communication Services, Application Insights, Graph by script) goes to it, and the
// app names it with AZURE_CLIENT_ID, so no key or connection string is ever needed.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region of the identity.')
param location string

@description('Tags for the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
