# azd postdeploy hook (Windows): the same subscription as postdeploy.sh.
$ErrorActionPreference = 'Stop'
# Push first (link the hub to ACS, subscribe call_events): the SMS step below may stop early.
& (Join-Path $PSScriptRoot 'push.ps1')
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
$functionName = 'sms_events'
# Builds before the SMS capability have no such function: say so instead of failing `azd up`.
az resource show --ids "$($env:AZURE_FUNCTION_APP_ID)/functions/$functionName" --output none 2>$null
if ($LASTEXITCODE -ne 0) {
  Write-Host "switchboard: this build has no $functionName function yet; SMS events are not subscribed."
  exit 0
}
az eventgrid system-topic event-subscription create `
  --name sms-events `
  --resource-group $env:AZURE_RESOURCE_GROUP `
  --system-topic-name $env:ACS_EVENTGRID_SYSTEM_TOPIC `
  --endpoint-type azurefunction `
  --endpoint "$($env:AZURE_FUNCTION_APP_ID)/functions/$functionName" `
  --included-event-types Microsoft.Communication.SMSReceived Microsoft.Communication.SMSDeliveryReportReceived `
  --event-delivery-schema eventgridschema `
  --max-delivery-attempts 10 `
  --event-ttl 1440 `
  --output none
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
Write-Host "switchboard: ACS SMS events now go to function $functionName."
