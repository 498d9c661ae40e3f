// The Function App on the Flex Consumption plan (Python 3.11), running as the user-assigned
// identity, with its app settings: exactly the names switchboard/settings.py reads (docs/settings.md),
// less the key-based alternatives, plus the platform's own identity-based settings.

@description('Name of the Function App.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region of the app and its plan.')
param location string

@description('Tags for the plan.')
param tags object = {}

@description('Tags for the app; must carry azd-service-name so `azd deploy` finds it.')
param appTags object

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity (AZURE_CLIENT_ID).')
param identityClientId string

@description('Name of the host storage account.')
param storageAccountName string

@description('Blob endpoint of the host storage account.')
param storageBlobEndpoint string

@description('Container the deployment package goes to.')
param deploymentContainerName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Maximum number of instances Flex Consumption scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory per instance in MB.')
@allowed([ 512, 2048, 4096 ])
param instanceMemoryMB int = 2048

@description('Caller auth: jwt (any OIDC issuer) or easyauth (App Service authentication, configured here).')
@allowed([ 'jwt', 'easyauth' ])
param authMode string

@description('OIDC issuer of app tokens (AUTH_ISSUER).')
param authIssuer string

@description('Audience of app tokens (AUTH_AUDIENCE): the API app registration\'s client id (Application ID). Entra v2 access tokens carry the client id as aud; the App ID URI (api://…) only for v1 tokens.')
param authAudience string

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

@description('Default ACS token lifetime in minutes (TOKEN_TTL_MINUTES), 60-1440.')
@minValue(60)
@maxValue(1440)
param tokenTtlMinutes int = 60

@description('Cosmos DB endpoint (COSMOS_ENDPOINT).')
param cosmosEndpoint string

@description('Cosmos DB database (COSMOS_DATABASE).')
param cosmosDatabase string

@description('Communication Services endpoint (ACS_ENDPOINT).')
param acsEndpoint string

@description('Tenant that Graph calls go to (GRAPH_TENANT_ID).')
param graphTenantId string

@description('Object id of the Teams user who organizes scheduled meetings (MEETINGS_ORGANIZER_ID); empty: local meetings, no Graph.')
param meetingsOrganizerId string = ''

@description('Who bypasses the Teams lobby (MEETINGS_LOBBY_BYPASS).')
param meetingsLobbyBypass string = 'everyone'

@description('Client id of the Entra app Teams users sign in to for the token exchange (TEAMS_CLIENT_ID).')
param teamsClientId string = ''

@description('Hours after which an idle club call is forgotten (CALL_IDLE_HOURS).')
param callIdleHours int = 12

@description('How clubs call (CLUB_CALLS): group (an ACS group call id; anyone who learns it can join) or rooms (an ACS room admitting only members who asked to join).')
@allowed([ 'group', 'rooms' ])
param clubCalls string = 'group'

@description('Public URL of the client app, for join links in SMS (PUBLIC_APP_URL).')
param publicAppUrl string = ''

@description('Origins browser clients may call the API from, comma-separated; empty: none.')
param corsAllowedOrigins string = ''

@description('SMS a user may trigger per day (SMS_DAILY_LIMIT).')
param smsDailyLimit int = 20

@description('The ACS phone number SMS is sent from (SMS_FROM); empty: no SMS.')
param smsFrom string = ''

@description('ISO country codes SMS may go to, or * (SMS_ALLOWED_COUNTRIES); empty: the country of SMS_FROM.')
param smsAllowedCountries string = ''

@description('The ACS phone number used as caller ID for PSTN calls (PSTN_CALLER_ID); empty: no PSTN.')
param pstnCallerId string = ''

@description('The Notification Hubs namespace (NOTIFICATION_HUB_NAMESPACE).')
param notificationHubNamespace string

@description('The notification hub (NOTIFICATION_HUB_NAME).')
param notificationHubName string

@description('A Key Vault reference to the hub\'s Send-rights connection string (NOTIFICATION_HUB_CONNECTION_STRING), resolved by the platform with the app identity.')
param notificationHubReference string

var easyAuth = authMode == 'easyauth'

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy on Flex Consumption needs always-ready instances, which end the near-zero cost at rest; opt in by hand.
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

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: The API is public by design: clients call it from anywhere with their sign-in token.
  // checkov:skip=CKV_AZURE_17: Callers authenticate with bearer tokens (jwt or Easy Auth), not client certificates.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales out on demand and to zero; a minimum instance count would end the near-zero cost at rest.
  // checkov:skip=CKV_AZURE_213: Flex Consumption does not support the App Service health check; GET /api/health is there for external probes.
  name: name
  location: location
  tags: appTags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the app's user-assigned identity (Secrets User on the
    // push vault), not a system-assigned one the site does not have.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // Web clients on other origins (the platform answers preflights). Bearer tokens, not
      // cookies, so no credentials mode.
      cors: {
        allowedOrigins: empty(corsAllowedOrigins) ? [] : split(corsAllowedOrigins, ',')
        supportCredentials: false
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Flex Consumption sets FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION itself (from
// functionAppConfig) and rejects them as app settings, so neither appears here.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: False positive: a sites/config resource read as a site; authentication is the authSettings resource below (easyauth) or the app itself (jwt).
  // checkov:skip=CKV_AZURE_63: False positive: HTTP logging is a site setting, not an app setting; Application Insights records every request.
  // checkov:skip=CKV_AZURE_65: False positive: detailed errors are a site setting, not an app setting.
  // checkov:skip=CKV_AZURE_66: False positive: failed request tracing is a site setting; Application Insights records failures.
  // checkov:skip=CKV_AZURE_80: False positive: .NET version does not apply to a Python app.
  // checkov:skip=CKV_AZURE_88: Azure Files: Flex Consumption has no content share; the package comes from blob storage.
  // checkov:skip=CKV_AZURE_222: False positive: public network access is a site setting (see the site).
  parent: functionApp
  name: 'appsettings'
  properties: {
    // The host's storage, through the identity (shared keys are off on the account).
    AzureWebJobsStorage__accountName: storageAccountName
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    // Telemetry through the identity (local auth is off on the component). The connection
    // string only names the component; Microsoft documents it as not a secret, and with local
    // auth off it cannot be used to send telemetry without an Entra token.
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    // Traces and metrics through the Azure Monitor OpenTelemetry distro in the worker
    // (switchboard/telemetry.py), linked to the host's own request telemetry.
    PYTHON_ENABLE_OPENTELEMETRY: 'true'
    SWITCHBOARD_TELEMETRY: 'azuremonitor'
    // The app's own settings (docs/settings.md). Empty means unset to the app.
    AZURE_CLIENT_ID: identityClientId
    SWITCHBOARD_STORE: 'cosmos'
    COSMOS_ENDPOINT: cosmosEndpoint
    COSMOS_DATABASE: cosmosDatabase
    // The Cosmos DB trigger's identity-based connection (blueprints/reactions.py, connection
    // "COSMOS"): the same account and the same managed identity as the app's own store client.
    COSMOS__accountEndpoint: cosmosEndpoint
    COSMOS__credential: 'managedidentity'
    COSMOS__clientId: identityClientId
    ACS_ENDPOINT: acsEndpoint
    AUTH_MODE: authMode
    AUTH_ISSUER: authIssuer
    AUTH_AUDIENCE: authAudience
    AUTH_JWKS_URL: authJwksUrl
    AUTH_USER_CLAIM: authUserClaim
    AUTH_REQUIRED_SCOPE: authRequiredScope
    TOKEN_BUDGET: tokenBudget
    TOKEN_SCOPES: tokenScopes
    TOKEN_TTL_MINUTES: string(tokenTtlMinutes)
    // Graph through the identity: no app registration secret (GRAPH_CLIENT_SECRET is never set).
    GRAPH_TENANT_ID: graphTenantId
    GRAPH_CLIENT_ID: ''
    MEETINGS_ORGANIZER_ID: meetingsOrganizerId
    MEETINGS_LOBBY_BYPASS: meetingsLobbyBypass
    TEAMS_CLIENT_ID: teamsClientId
    CALL_IDLE_HOURS: string(callIdleHours)
    CLUB_CALLS: clubCalls
    PUBLIC_APP_URL: publicAppUrl
    SMS_DAILY_LIMIT: string(smsDailyLimit)
    SMS_FROM: smsFrom
    SMS_ALLOWED_COUNTRIES: smsAllowedCountries
    PSTN_CALLER_ID: pstnCallerId
    // Push: the hub's one key stays in Key Vault; this setting is only a reference to it.
    NOTIFICATION_HUB_NAMESPACE: notificationHubNamespace
    NOTIFICATION_HUB_NAME: notificationHubName
    NOTIFICATION_HUB_CONNECTION_STRING: notificationHubReference
  }
}

// Easy Auth (App Service authentication) validates Entra bearer tokens in front of the app and
// passes the principal headers on; the platform then sets WEBSITE_AUTH_ENABLED, without which the
// app refuses AUTH_MODE=easyauth. Anonymous requests still reach the app, which answers 401 itself
// on every route but health and the OpenAPI document. With jwt the app validates tokens itself and
// Easy Auth stays off (declared, not conditional, so a switch back to jwt turns it off again).
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: False positive: this is the auth config itself (a sites/config resource); checkov reads it as a site.
  // checkov:skip=CKV_AZURE_63: False positive: HTTP logging is a site setting, not one of authsettingsV2.
  // checkov:skip=CKV_AZURE_65: False positive: detailed errors are a site setting, not one of authsettingsV2.
  // checkov:skip=CKV_AZURE_66: False positive: failed request tracing is a site setting, not one of authsettingsV2.
  // checkov:skip=CKV_AZURE_80: False positive: .NET version does not apply to a Python app or to authsettingsV2.
  // checkov:skip=CKV_AZURE_88: False positive: Azure Files does not apply to authsettingsV2 (Flex Consumption has no content share).
  // checkov:skip=CKV_AZURE_222: False positive: public network access is a site setting; the API is public by design (see the site).
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: easyAuth
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    identityProviders: easyAuth ? {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authAudience
          openIdIssuer: authIssuer
        }
        validation: {
          allowedAudiences: [
            authAudience
            'api://${authAudience}'
          ]
        }
      }
    } : {}
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output name string = functionApp.name
output id string = functionApp.id
output defaultHostName string = functionApp.properties.defaultHostName
