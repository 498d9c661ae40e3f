// Alert rules an on-call engineer acts on (docs/operations.md says what each means and what to
// do): the API's 5xx rate, dependencies throttling us (429s), reaction work falling behind, and
// work parked after its last attempt. Log alerts over the Application Insights tables the app's
// OpenTelemetry metrics land in (`customMetrics`, by the names in switchboard/telemetry.py).

@description('Prefix of the alert rules\' names.')
param namePrefix string

@description('Azure region of the rules.')
param location string

@description('Tags for the rules.')
param tags object = {}

@description('Name of the Application Insights component the rules query.')
param applicationInsightsName string

@description('Resource id of an existing action group to notify (email, SMS, a pager); empty: the rules fire in the portal only.')
param actionGroupId string = ''

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var actions = empty(actionGroupId) ? { actionGroups: [] } : { actionGroups: [ actionGroupId ] }

// name, what it watches, the query's measure, threshold, severity (0 critical … 4 verbose).
var rules = [
  {
    name: 'http-5xx-rate'
    description: 'More than 5% of API requests answered 5xx in 5 minutes (and at least 20 requests).'
    query: 'requests | summarize total = count(), failed = countif(toint(resultCode) >= 500) | where total >= 20 | extend rate = 100.0 * failed / total'
    measure: 'rate'
    threshold: 5
    severity: 1
  }
  {
    name: 'dependency-throttling'
    description: 'A dependency (ACS, chat, SMS, Graph, the hub, Cosmos DB) answered 429 more than 10 times in 5 minutes.'
    query: 'customMetrics | where name == "switchboard.dependency.throttled" | summarize throttled = sum(valueSum)'
    measure: 'throttled'
    threshold: 10
    severity: 2
  }
  {
    name: 'reaction-backlog-age'
    description: 'The oldest due reaction work item is more than 5 minutes old: copies are not converging.'
    query: 'customMetrics | where name == "switchboard.reactions.oldest_age" | summarize age = max(valueMax)'
    measure: 'age'
    threshold: 300
    severity: 2
  }
  {
    name: 'reactions-parked'
    description: 'Reaction work was parked after its last attempt: a copy will not converge until someone looks.'
    query: 'customMetrics | where name == "switchboard.reactions.parked_now" | summarize parked = max(valueMax)'
    measure: 'parked'
    threshold: 0
    severity: 3
  }
]

resource alert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in rules: {
  name: '${namePrefix}-${rule.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: '${namePrefix} ${rule.name}'
    description: rule.description
    severity: rule.severity
    enabled: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    scopes: [ applicationInsights.id ]
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: rule.query
          metricMeasureColumn: rule.measure
          timeAggregation: 'Maximum'
          operator: 'GreaterThan'
          threshold: rule.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: actions
  }
}]

output ruleNames array = [for (rule, i) in rules: alert[i].name]
