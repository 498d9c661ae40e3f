// Switchboard on Azure, for `azd up`: a resource group holding Communication Services, Cosmos DB
// (serverless), the Function App on Flex Consumption, its storage and monitoring, and the one
// user-assigned identity they all trust, and Notification Hubs for pushes. No key or connection
// string is passed or output; the one key the hub's SAS-only data plane needs goes from the hub
// into Key Vault (modules/notificationhubs.bicep) and the app reads it by a Key Vault reference.
// Graph/Teams grants cannot be made here: infra/scripts/setup-graph.sh makes them and this template
// takes the resulting ids as parameters (see docs/deploy.md).

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Azure region for every regional resource (one that offers Flex Consumption).')
param location string

@description('Caller auth in Azure: jwt (Entra ID or any OIDC issuer) or easyauth (App Service authentication). dev is refused in Azure.')
@allowed([ 'jwt', 'easyauth' ])
param authMode string

@description('OIDC issuer of app tokens (AUTH_ISSUER); empty: Entra ID v2.0 of this tenant.')
param authIssuer string = ''

@description('Audience of app tokens (AUTH_AUDIENCE): the API app registration\'s client id (Application ID). Entra v2 access tokens carry the client id as aud; the App ID URI (api://…) only for v1 tokens.')
param authAudience string = ''

@description('JWKS URL (AUTH_JWKS_URL); empty: from the issuer\'s discovery document.')
param authJwksUrl string = ''

@description('Token claim that identifies the caller (AUTH_USER_CLAIM), in jwt and easyauth alike. Chosen once: changing it makes every user a new one.')
param authUserClaim string = 'sub'

@description('Delegated scope(s) a caller\'s token must carry (AUTH_REQUIRED_SCOPE), e.g. access_as_user; empty: any delegated token (app-only tokens are refused either way).')
param authRequiredScope string = ''

@description('Per-user ACS token issues in any window (TOKEN_BUDGET), <count>/<window>: 30/10m is 30 per user in any 10 minutes.')
param tokenBudget string = '30/10m'

@description('ACS token scopes the app may issue (TOKEN_SCOPES), comma-separated. Default chat.join.limited,voip: clients chat only in threads the controller put them in.')
param tokenScopes string = 'chat.join.limited,voip'

@description('Where ACS keeps its data at rest.')
param acsDataLocation string = 'United States'

@description('The ACS phone number SMS is sent from (SMS_FROM). Numbers cannot be bought in Bicep; empty: the app runs without SMS and says so.')
param smsFrom string = ''

@description('The ACS phone number used as caller ID for PSTN calls (PSTN_CALLER_ID); empty: no PSTN.')
param pstnCallerId string = ''

@description('Object id of the Teams user who organizes meetings (MEETINGS_ORGANIZER_ID), from infra/scripts/setup-graph.sh; empty: local meetings.')
param meetingsOrganizerId string = ''

@description('Client id of the Entra app Teams users sign in to (TEAMS_CLIENT_ID), from infra/scripts/setup-graph.sh.')
param teamsClientId string = ''

@description('How clubs call (CLUB_CALLS): group, or rooms (an ACS room admitting only members who asked to join).')
@allowed([ 'group', 'rooms' ])
param clubCalls string = 'group'
@description('Resource id of an Azure Monitor action group the alert rules notify; empty: alerts show in the portal only.')
param alertActionGroupId string = ''

@description('Public URL of the client app, for join links in SMS (PUBLIC_APP_URL).')
param publicAppUrl string = ''

@description('Origins browser clients may call the API from, comma-separated (e.g. https://app.contoso.com); empty: none.')
param corsAllowedOrigins string = ''

@description('0: serverless Cosmos DB (near zero at rest); otherwise shared provisioned throughput in RU/s. Fixed once the account exists.')
param cosmosProvisionedThroughput int = 0

@description('Name of the Cosmos DB database (COSMOS_DATABASE).')
param cosmosDatabaseName string = 'switchboard'

@description('Notification Hubs tier (Free: 500 devices, 1M pushes a month).')
@allowed([ 'Free', 'Basic', 'Standard' ])
param notificationHubSku string = 'Free'

@description('APNs token authentication for the hub: key id of the .p8 key; empty: no APNs yet (docs/push.md says what to add).')
param apnsKeyId string = ''

@description('APNs: Apple developer team id.')
param apnsTeamId string = ''

@description('APNs: the iOS app\'s bundle id.')
param apnsBundleId string = ''

@description('APNs: production or sandbox.')
@allowed([ 'production', 'sandbox' ])
param apnsEnvironment string = 'production'

@secure()
@description('APNs: contents of the .p8 key; empty: no APNs.')
param apnsKey string = ''

@description('FCM v1: Firebase project id; empty: no FCM yet.')
param fcmProjectId string = ''

@description('FCM v1: service account client email.')
param fcmClientEmail string = ''

@secure()
@description('FCM v1: service account private key; empty: no FCM.')
param fcmPrivateKey string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var effectiveAuthIssuer = empty(authIssuer) ? '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0' : authIssuer
var functionAppName = 'func-${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    namePrefix: 'switchboard-${resourceToken}'
    location: location
    tags: tags
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    actionGroupId: alertActionGroupId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package-${resourceToken}'
    appPrincipalId: identity.outputs.principalId
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    accountName: 'cosmos-${resourceToken}'
    location: location
    tags: tags
    databaseName: cosmosDatabaseName
    provisionedThroughput: cosmosProvisionedThroughput
    appPrincipalId: identity.outputs.principalId
  }
}

module communication 'modules/communication.bicep' = {
  name: 'communication'
  scope: rg
  params: {
    name: 'acs-${resourceToken}'
    dataLocation: acsDataLocation
    systemTopicName: 'evgt-acs-${resourceToken}'
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module notificationHubs 'modules/notificationhubs.bicep' = {
  name: 'notificationhubs'
  scope: rg
  params: {
    namespaceName: 'ntfns-${resourceToken}'
    hubName: 'switchboard'
    keyVaultName: 'kv-${resourceToken}'
    location: location
    tags: tags
    skuName: notificationHubSku
    appPrincipalId: identity.outputs.principalId
    apnsKeyId: apnsKeyId
    apnsTeamId: apnsTeamId
    apnsBundleId: apnsBundleId
    apnsEnvironment: apnsEnvironment
    apnsKey: apnsKey
    fcmProjectId: fcmProjectId
    fcmClientEmail: fcmClientEmail
    fcmPrivateKey: fcmPrivateKey
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    appTags: union(tags, { 'azd-service-name': 'api' })
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    authMode: authMode
    authIssuer: effectiveAuthIssuer
    authAudience: authAudience
    authJwksUrl: authJwksUrl
    authUserClaim: authUserClaim
    authRequiredScope: authRequiredScope
    tokenBudget: tokenBudget
    tokenScopes: tokenScopes
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabase: cosmos.outputs.databaseName
    acsEndpoint: communication.outputs.endpoint
    graphTenantId: tenant().tenantId
    meetingsOrganizerId: meetingsOrganizerId
    teamsClientId: teamsClientId
    clubCalls: clubCalls
    publicAppUrl: publicAppUrl
    corsAllowedOrigins: corsAllowedOrigins
    smsFrom: smsFrom
    pstnCallerId: pstnCallerId
    notificationHubNamespace: notificationHubs.outputs.namespaceName
    notificationHubName: notificationHubs.outputs.hubName
    notificationHubReference: notificationHubs.outputs.hubReference
  }
}

// What clients, the hooks and `azd env` need: endpoints, names and ids. Never a key.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output SWITCHBOARD_API_URL string = 'https://${functionApp.outputs.defaultHostName}/api'
output AZURE_CLIENT_ID string = identity.outputs.clientId
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AUTH_MODE string = authMode
output AUTH_ISSUER string = effectiveAuthIssuer
output ACS_ENDPOINT string = communication.outputs.endpoint
output ACS_RESOURCE_NAME string = communication.outputs.name
output ACS_EVENTGRID_SYSTEM_TOPIC string = communication.outputs.systemTopicName
output COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output COSMOS_DATABASE string = cosmos.outputs.databaseName
output COSMOS_ACCOUNT_NAME string = cosmos.outputs.accountName
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output NOTIFICATION_HUB_NAMESPACE string = notificationHubs.outputs.namespaceName
output NOTIFICATION_HUB_NAME string = notificationHubs.outputs.hubName
output NOTIFICATION_HUB_ID string = notificationHubs.outputs.hubId
