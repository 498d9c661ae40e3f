#!/bin/sh
# Push, run by the postdeploy hook (postdeploy.sh): two ARM facts Bicep cannot state.
# 1. Link the Notification Hub to ACS, so the Calling SDKs on iOS and Android can register devices
#    for incoming-call pushes (ACS's linkNotificationHub action; a POST that overwrites, so
#    re-running is safe). ACS sends through the hub's Direct Send API and needs Send rights only
#    (Microsoft's "Communication Services notifications" page recommends a Send-only policy): it
#    gets the connection string of the template's Send-only rule (SEND_RULE, as in
#    modules/notificationhubs.bicep), never DefaultFullSharedAccessSignature (Listen and Manage
#    too). The string goes from the hub to ACS through a private temporary file and is never
#    printed, stored or passed as an argument.
# 2. Subscribe the app's `call_events` function to ACS CallStarted/CallEnded (a PUT: idempotent).
#    Event Grid checks that the function exists, hence after the deploy.
# Needs the Azure CLI signed in to the same subscription (az login). Linking says when skipped
# (no hub in the environment).
set -eu

: "${AZURE_RESOURCE_GROUP:?run azd provision first}"
: "${ACS_EVENTGRID_SYSTEM_TOPIC:?run azd provision first}"
: "${AZURE_FUNCTION_APP_ID:?run azd provision first}"

CALL_FUNCTION=call_events
SEND_RULE=switchboard-send
ARM=https://management.azure.com

if [ -z "${NOTIFICATION_HUB_ID:-}" ]; then
  echo "switchboard: no Notification Hub in this environment (re-run azd provision); ACS is not linked."
else
  : "${ACS_RESOURCE_NAME:?run azd provision first}"
  acs_id=$(az resource show --resource-group "$AZURE_RESOURCE_GROUP" --name "$ACS_RESOURCE_NAME" \
    --resource-type Microsoft.Communication/communicationServices --query id --output tsv)
  body=$(umask 077 && mktemp)
  trap 'rm -f "$body"' EXIT INT TERM
  connection=$(az rest --method post \
    --url "$ARM$NOTIFICATION_HUB_ID/authorizationRules/$SEND_RULE/listKeys?api-version=2023-09-01" \
    --query primaryConnectionString --output tsv)
  printf '{"resourceId": "%s", "connectionString": "%s"}' "$NOTIFICATION_HUB_ID" "$connection" >"$body"
  connection=""
  az rest --method post \
    --url "$ARM$acs_id/linkNotificationHub?api-version=2023-04-01" \
    --body "@$body" --output none
  rm -f "$body"
  echo "switchboard: Notification Hub linked to ACS (incoming-call pushes for the Calling SDKs)."
fi

# The host lists a freshly deployed app's functions a little after `azd deploy` returns: wait for
# call_events (up to ~2 minutes), then fail loudly rather than leave calls unsubscribed.
tries=0
until az resource show --ids "$AZURE_FUNCTION_APP_ID/functions/$CALL_FUNCTION" --output none 2>/dev/null; do
  tries=$((tries + 1))
  if [ "$tries" -ge 12 ]; then
    echo "switchboard: function $CALL_FUNCTION is not listed on the app; run 'azd deploy' again." >&2
    exit 1
  fi
  sleep 10
done

az eventgrid system-topic event-subscription create \
  --name call-events \
  --resource-group "$AZURE_RESOURCE_GROUP" \
  --system-topic-name "$ACS_EVENTGRID_SYSTEM_TOPIC" \
  --endpoint-type azurefunction \
  --endpoint "$AZURE_FUNCTION_APP_ID/functions/$CALL_FUNCTION" \
  --included-event-types Microsoft.Communication.CallStarted Microsoft.Communication.CallEnded \
  --event-delivery-schema eventgridschema \
  --max-delivery-attempts 10 \
  --event-ttl 1440 \
  --output none

echo "switchboard: ACS CallStarted/CallEnded events now go to function $CALL_FUNCTION."
