// The Function App's own storage: the host's state (AzureWebJobsStorage: locks, keys, timers) and
// the Flex Consumption deployment container. Shared keys are off, so both are reached with the app
// identity only; nothing in the app's data lives here (that is Cosmos DB).

@description('Name of the storage account (3-24 lower-case letters and digits).')
param name string

@description('Azure region of the account.')
param location string

@description('Tags for the account.')
param tags object = {}

@description('Blob container that Flex Consumption deploys the app package from.')
param deploymentContainerName string

@description('Principal id of the app identity.')
param appPrincipalId string

// Storage Blob Data Owner: what the Functions host needs for identity-based AzureWebJobsStorage
// (blob leases and the keys it keeps in blobs) and what Flex Consumption needs to read and write
// the deployment container. The app has no queue, blob or Durable triggers, so neither Storage
// Queue Data Contributor nor Storage Table Data Contributor is granted.
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without a VNet reaches its host storage over the public endpoint; shared keys are off, so only Entra identities get in.
  // checkov:skip=CKV_AZURE_59: Public network access is needed for the same reason (CKV_AZURE_35); blob public access is off.
  // checkov:skip=CKV_AZURE_206: LRS: the account holds host state and the deployment package only, both rebuilt by `azd deploy`; app data is in Cosmos DB.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }

  resource blobServices 'blobServices' = {
    name: 'default'

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }
}

resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, storageBlobDataOwnerRoleId)
  scope: storage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
  }
}

output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output deploymentContainerName string = deploymentContainerName
