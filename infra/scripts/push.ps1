# Push (Windows), run by postdeploy.ps1: the same two steps as push.sh: link the Notification Hub
# to ACS (idempotent; ACS sends through Direct Send and needs Send rights only, so it gets the
# template's Send-only rule, never DefaultFullSharedAccessSignature; the connection string goes
# hub → ACS through a private temporary file, never printed), and subscribe call_events to ACS
# CallStarted/CallEnded.
$ErrorActionPreference = 'Stop'
$callFunction = 'call_events'
$sendRule = 'switchboard-send'
$arm = 'https://management.azure.com'

if (-not $env:NOTIFICATION_HUB_ID) {
  Write-Host "switchboard: no Notification Hub in this environment (re-run azd provision); ACS is not linked."
} else {
  $acsId = az resource show --resource-group $env:AZURE_RESOURCE_GROUP --name $env:ACS_RESOURCE_NAME `
    --resource-type Microsoft.Communication/communicationServices --query id --output tsv
  if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
  $connection = az rest --method post `
    --url "$arm$($env:NOTIFICATION_HUB_ID)/authorizationRules/$sendRule/listKeys?api-version=2023-09-01" `
    --query primaryConnectionString --output tsv
  if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
  $body = New-TemporaryFile
  try {
    @{ resourceId = $env:NOTIFICATION_HUB_ID; connectionString = $connection } | ConvertTo-Json | Set-Content -Path $body
    $connection = $null
    az rest --method post --url "$arm$acsId/linkNotificationHub?api-version=2023-04-01" --body "@$body" --output none
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
  } finally {
    Remove-Item -Force $body
  }
  Write-Host "switchboard: Notification Hub linked to ACS (incoming-call pushes for the Calling SDKs)."
}

# Wait for the freshly deployed app to list call_events (up to ~2 minutes), then fail loudly.
$tries = 0
while ($true) {
  az resource show --ids "$($env:AZURE_FUNCTION_APP_ID)/functions/$callFunction" --output none 2>$null
  if ($LASTEXITCODE -eq 0) { break }
  $tries++
  if ($tries -ge 12) {
    Write-Error "switchboard: function $callFunction is not listed on the app; run 'azd deploy' again."
    exit 1
  }
  Start-Sleep -Seconds 10
}
az eventgrid system-topic event-subscription create `
  --name call-events `
  --resource-group $env:AZURE_RESOURCE_GROUP `
  --system-topic-name $env:ACS_EVENTGRID_SYSTEM_TOPIC `
  --endpoint-type azurefunction `
  --endpoint "$($env:AZURE_FUNCTION_APP_ID)/functions/$callFunction" `
  --included-event-types Microsoft.Communication.CallStarted Microsoft.Communication.CallEnded `
  --event-delivery-schema eventgridschema `
  --max-delivery-attempts 10 `
  --event-ttl 1440 `
  --output none
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
Write-Host "switchboard: ACS CallStarted/CallEnded events now go to function $callFunction."
