#!/bin/sh
# azd postdeploy hook: subscribe the app's `sms_events` function to the SMS events of the ACS
# Event Grid system topic. It runs after the code is deployed because Event Grid checks, when the
# subscription is created, that the function exists. `create` is a PUT, so re-running is safe.
# Needs the Azure CLI signed in to the same subscription (az login).
set -eu

: "${AZURE_RESOURCE_GROUP:?run azd provision first}"
: "${ACS_EVENTGRID_SYSTEM_TOPIC:?run azd provision first}"
: "${AZURE_FUNCTION_APP_ID:?run azd provision first}"

# Push first (link the hub to ACS, subscribe call_events): the SMS step below may stop early.
sh "$(dirname "$0")/push.sh"

FUNCTION_NAME=sms_events

# The host indexes a freshly deployed app's functions a little after `azd deploy` returns: wait
# for sms_events to be listed (up to ~2 minutes), then fail loudly rather than leave the topic
# silently unsubscribed.
tries=0
until az resource show --ids "$AZURE_FUNCTION_APP_ID/functions/$FUNCTION_NAME" --output none 2>/dev/null; do
  tries=$((tries + 1))
  if [ "$tries" -ge 12 ]; then
    echo "switchboard: function $FUNCTION_NAME is not listed on the app; run 'azd deploy' again." >&2
    exit 1
  fi
  sleep 10
done

az eventgrid system-topic event-subscription create \
  --name sms-events \
  --resource-group "$AZURE_RESOURCE_GROUP" \
  --system-topic-name "$ACS_EVENTGRID_SYSTEM_TOPIC" \
  --endpoint-type azurefunction \
  --endpoint "$AZURE_FUNCTION_APP_ID/functions/$FUNCTION_NAME" \
  --included-event-types Microsoft.Communication.SMSReceived Microsoft.Communication.SMSDeliveryReportReceived \
  --event-delivery-schema eventgridschema \
  --max-delivery-attempts 10 \
  --event-ttl 1440 \
  --output none

echo "switchboard: ACS SMS events now go to function $FUNCTION_NAME."
