# azd postdeploy hook (Windows): the same subscription as postdeploy.sh.
$ErrorActionPreference = 'Stop'
# Push first (link the hub to ACS, subscribe call_events): the SMS step below may stop early.
& (Join-Path $PSScriptRoot 'push.ps1')
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
$functionName = 'sms_events'
# The host indexes a freshly deployed app's functions a little after `azd deploy` returns: wait
# for sms_events to be listed (up to ~2 minutes), then fail loudly. `create` is a PUT: re-runs
# are safe.
$tries = 0
while ($true) {
  az resource show --ids "$($env:AZURE_FUNCTION_APP_ID)/functions/$functionName" --output none 2>$null
  if ($LASTEXITCODE -eq 0) { break }
  $tries++
  if ($tries -ge 12) {
    Write-Error "switchboard: function $functionName is not listed on the app; run 'azd deploy' again."
    exit 1
  }
  Start-Sleep -Seconds 10
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
