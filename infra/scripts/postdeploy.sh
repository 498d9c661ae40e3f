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

# Builds before the SMS capability have no such function: say so and leave the topic unsubscribed
# rather than failing the whole `azd up` (re-run `azd deploy` once the function ships).
if ! az resource show --ids "$AZURE_FUNCTION_APP_ID/functions/$FUNCTION_NAME" --output none 2>/dev/null; then
  echo "switchboard: this build has no $FUNCTION_NAME function yet; SMS events are not subscribed."
  exit 0
fi

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
