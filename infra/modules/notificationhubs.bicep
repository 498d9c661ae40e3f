// Azure Notification Hubs for Switchboard: a namespace and one hub (Free tier by default), with
// APNs (token-based) and FCM v1 credentials when they are given, and the Key Vault that holds the
// app's Send-rights connection string.
//
// The hub's data plane accepts Shared Access Signatures only (no Entra ID), so the app needs one
// key. It is a hub-level rule with Send rights alone, its connection string goes from the rule
// straight into a Key Vault secret (ARM to ARM: never a parameter, an output or an app setting),
// and the app reads it through a Key Vault reference with its identity, which holds Key Vault
// Secrets User on this vault and nothing else. tests/infra proves no other key appears anywhere.
//
// Linking the hub to ACS (for the Calling SDKs' incoming-call pushes) is an ARM action Bicep
// cannot express: infra/scripts/push.sh does it after deployment, with this same Send-only rule
// (ACS uses the hub's Direct Send API, which needs Send rights and nothing more).

@description('Name of the Notification Hubs namespace (globally unique).')
param namespaceName string

@description('Name of the notification hub.')
param hubName string

@description('Name of the Key Vault holding the Send-rights connection string (globally unique, 3-24 characters).')
param keyVaultName string

@description('Azure region of the namespace and the vault.')
param location string

@description('Tags for every resource.')
param tags object = {}

@description('Notification Hubs tier: Free (500 devices, 1M pushes a month), Basic or Standard.')
@allowed([ 'Free', 'Basic', 'Standard' ])
param skuName string = 'Free'

@description('Principal id of the app identity.')
param appPrincipalId string

@description('APNs token authentication: the key id of the .p8 key; empty: no APNs.')
param apnsKeyId string = ''

@description('APNs: the Apple developer team id.')
param apnsTeamId string = ''

@description('APNs: the app bundle id.')
param apnsBundleId string = ''

@description('APNs: production or sandbox endpoint.')
@allowed([ 'production', 'sandbox' ])
param apnsEnvironment string = 'production'

@secure()
@description('APNs: the contents of the .p8 key (without the BEGIN/END lines); empty: no APNs.')
param apnsKey string

@description('FCM v1: the Firebase project id; empty: no FCM.')
param fcmProjectId string = ''

@description('FCM v1: the service account\'s client email.')
param fcmClientEmail string = ''

@secure()
@description('FCM v1: the service account\'s private key; empty: no FCM.')
param fcmPrivateKey string

// Key Vault Secrets User: read secret values, nothing else; on this vault only.
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
var connectionStringSecretName = 'notification-hub-send'
var apnsEndpoint = apnsEnvironment == 'production' ? 'https://api.push.apple.com:443/3/device' : 'https://api.development.push.apple.com:443/3/device'
var withApns = !empty(apnsKeyId) && !empty(apnsKey)
var withFcm = !empty(fcmProjectId) && !empty(fcmPrivateKey)

resource namespace 'Microsoft.NotificationHubs/namespaces@2023-10-01-preview' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    namespaceType: 'NotificationHub'
  }
}

resource hub 'Microsoft.NotificationHubs/namespaces/notificationHubs@2023-10-01-preview' = {
  parent: namespace
  name: hubName
  location: location
  tags: tags
  properties: {
    apnsCredential: withApns ? {
      properties: {
        keyId: apnsKeyId
        appId: apnsTeamId
        appName: apnsBundleId
        token: apnsKey
        endpoint: apnsEndpoint
      }
    } : null
    fcmV1Credential: withFcm ? {
      properties: {
        projectId: fcmProjectId
        clientEmail: fcmClientEmail
        privateKey: fcmPrivateKey
      }
    } : null
  }
}

// The one key of the app and of ACS's link: Send on this hub, nothing else (no Listen, no Manage).
resource sendRule 'Microsoft.NotificationHubs/namespaces/notificationHubs/authorizationRules@2023-10-01-preview' = {
  parent: hub
  name: 'switchboard-send'
  properties: {
    rights: [ 'Send' ]
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: The Flex Consumption app reads its Key Vault reference without a virtual network; access is Entra RBAC only (no access policies, no keys).
  // checkov:skip=CKV_AZURE_189: Same reason: public network access stays on, every call needs an Entra token with a role on this vault.
  // checkov:skip=CKV_AZURE_42: Recoverable means purge protection too, see CKV_AZURE_110; soft delete (7 days) stays on.
  // checkov:skip=CKV_AZURE_110: Purge protection is irreversible and would block `azd down --purge` and a re-provision of the same environment; soft delete stays on.
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
  }
}

resource connectionString 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: The hub's keys do not expire; an expiry here would silently stop the pushes. Rotate by regenerating the rule's key and re-provisioning.
  parent: vault
  name: connectionStringSecretName
  properties: {
    contentType: 'text/plain'
    value: sendRule.listKeys().primaryConnectionString
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
  }
}

output namespaceName string = namespace.name
output hubName string = hub.name
output hubId string = hub.id
// A Key Vault reference (the secret's URI without a version: the latest one), not the secret.
output hubReference string = '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${connectionStringSecretName}/)'
