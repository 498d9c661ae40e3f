# azd postdeploy hook (Windows): the same subscription as postdeploy.sh.
$ErrorActionPreference = 'Stop'
$functionName = 'sms_events'
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
