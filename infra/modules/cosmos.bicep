// Cosmos DB (NoSQL API): the account, the database and every container the app uses, each
// partitioned on /pk. The app never creates containers at run time (and, with local auth and
// key-based metadata writes off, could not), so this list must match switchboard/ports.py
// CONTAINERS exactly; tests/infra checks that it does.

@description('Name of the Cosmos DB account.')
param accountName string

@description('Azure region of the account.')
param location string

@description('Tags for the account.')
param tags object = {}

@description('Name of the database (COSMOS_DATABASE).')
param databaseName string

@description('0 for a serverless account (pay per request, near zero at rest); otherwise the database\'s shared provisioned throughput in RU/s (400 or more). Fixed when the account is created.')
param provisionedThroughput int = 0

@description('Principal id of the app identity.')
param appPrincipalId string

// Each container's resource definition: partitioned on /pk; defaultTtl only where documents
// expire (-1: TTL on, the expiry set per document). Mirrors CONTAINERS in switchboard/ports.py,
// which tests/infra checks.
var containers = [
  {
    id: 'users'
    partitionKey: { paths: [ '/pk' ], kind: 'Hash' }
    // Profiles never expire; a user's token-budget record does (it outlives an erase by a window).
    defaultTtl: -1
  }
  {
    id: 'identities'
    partitionKey: { paths: [ '/pk' ], kind: 'Hash' }
  }
  {
    id: 'friends'
    partitionKey: { paths: [ '/pk' ], kind: 'Hash' }
  }
  {
    id: 'clubs'
    partitionKey: { paths: [ '/pk' ], kind: 'Hash' }
  }
  {
    id: 'memberships'
    partitionKey: { paths: [ '/pk' ], kind: 'Hash' }
  }
  {
    id: 'meetings'
    partitionKey: { paths: [ '/pk' ], kind: 'Hash' }
  }
  {
    id: 'agenda'
    partitionKey: { paths: [ '/pk' ], kind: 'Hash' }
  }
  {
    id: 'phone'
    partitionKey: { paths: [ '/pk' ], kind: 'Hash' }
    defaultTtl: -1
  }
  {
    id: 'invites'
    partitionKey: { paths: [ '/pk' ], kind: 'Hash' }
    defaultTtl: -1
  }
  {
    id: 'threads'
    partitionKey: { paths: [ '/pk' ], kind: 'Hash' }
  }
  {
    id: 'devices'
    partitionKey: { paths: [ '/pk' ], kind: 'Hash' }
  }
  {
    id: 'system'
    partitionKey: { paths: [ '/pk' ], kind: 'Hash' }
  }
  {
    // Durable follow-up work (the reaction layer): its change feed drives the app's reactors.
    id: 'work'
    partitionKey: { paths: [ '/pk' ], kind: 'Hash' }
  }
]

var serverless = provisionedThroughput == 0

// Cosmos DB Built-in Data Contributor: read and write items in the database's containers, and no
// control-plane rights (it cannot create or delete containers). A Cosmos SQL role, not Azure RBAC.
var cosmosDataContributorRoleId = '00000000-0000-0000-0000-000000000002'

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  // checkov:skip=CKV_AZURE_101: Flex Consumption without a VNet reaches Cosmos DB over its public endpoint; local auth is off, so only Entra identities granted a data role get in.
  // checkov:skip=CKV_AZURE_99: IP/VNet rules: Flex Consumption has no fixed outbound IPs without a VNet; see CKV_AZURE_101.
  name: accountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    capabilities: serverless ? [ { name: 'EnableServerless' } ] : []
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    options: serverless ? {} : { throughput: provisionedThroughput }
  }
}

resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [for container in containers: {
  parent: database
  name: container.id
  properties: {
    resource: container
  }
}]

// The Functions Cosmos DB trigger's leases (blueprints/reactions.py): where each instance records
// how far it has read the `work` container's change feed. Not an app container (the app never
// reads it, so it is not in CONTAINERS); the trigger requires partition key /id. Declared here
// because the app's identity has no control-plane rights to create it.
resource leasesContainer 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: 'leases'
  properties: {
    resource: {
      id: 'leases'
      partitionKey: { paths: [ '/id' ], kind: 'Hash' }
    }
  }
}

// The data role below, on the whole database, is also what the trigger needs: read the `work`
// container's change feed and read and write its leases, with the app identity.
resource dataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: account
  name: guid(database.id, appPrincipalId, cosmosDataContributorRoleId)
  properties: {
    principalId: appPrincipalId
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${cosmosDataContributorRoleId}'
    scope: '${account.id}/dbs/${database.name}'
  }
}

output accountName string = account.name
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
