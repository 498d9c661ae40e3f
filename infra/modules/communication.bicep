// Azure Communication Services with local (access key) auth off, reached by the app identity, and
// the Event Grid system topic its SMS events come from. The topic's subscription to the app's
// `sms_events` function is made after the code is deployed (infra/scripts/postdeploy.sh), because
// Event Grid checks that the function exists when the subscription is created.

@description('Name of the Communication Services resource.')
param name string

@description('Where ACS keeps its data at rest, e.g. United States, Europe, UK, Australia.')
param dataLocation string

@description('Name of the Event Grid system topic on the ACS resource.')
param systemTopicName string

@description('Tags for both resources.')
param tags object = {}

@description('Principal id of the app identity.')
param appPrincipalId string

// Communication and Email Service Owner: the only built-in role that grants the ACS data plane
// (identities, tokens, SMS) to an Entra identity. Scoped to this one resource, nothing wider.
var communicationOwnerRoleId = '09976791-48a7-449e-bb21-39d1a415f350'

// 2025-05-01 is the first GA API version with disableLocalAuth.
resource communication 'Microsoft.Communication/communicationServices@2025-05-01' = {
  name: name
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    disableLocalAuth: true
  }
}

resource communicationOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communication.id, appPrincipalId, communicationOwnerRoleId)
  scope: communication
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', communicationOwnerRoleId)
  }
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: 'global'
  tags: tags
  properties: {
    source: communication.id
    topicType: 'Microsoft.Communication.CommunicationServices'
  }
}

output name string = communication.name
output endpoint string = 'https://${communication.properties.hostName}'
output systemTopicName string = systemTopic.name
