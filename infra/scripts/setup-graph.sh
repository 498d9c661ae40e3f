#!/bin/sh
# One-time Entra ID / Graph / Teams setup that Bicep cannot do. Each step prints what it made and
# stores the id in the azd environment, so the next `azd provision` (or `azd up`) passes it on to
# the app settings. Needs the Azure CLI signed in as someone who may create app registrations and,
# for `meetings`, grant Graph application permissions (Privileged Role Administrator or Global
# Administrator). Never creates a client secret: the app reaches Graph with its managed identity.
#
#   infra/scripts/setup-graph.sh api                  the API app registration -> AUTH_AUDIENCE
#   infra/scripts/setup-graph.sh teams                the Teams sign-in app      -> TEAMS_CLIENT_ID
#   infra/scripts/setup-graph.sh meetings <organizer> OnlineMeetings.ReadWrite.All for the app's
#                                                     identity               -> MEETINGS_ORGANIZER_ID
#                                                     (then run teams-access-policy.ps1)
set -eu

GRAPH_APP_ID=00000003-0000-0000-c000-000000000000
ACS_APP_ID=1fd5118e-2576-4263-8130-9503064c837a
ENV_NAME=$(azd env get-value AZURE_ENV_NAME 2>/dev/null || echo switchboard)

env_value() {
  azd env get-value "$1" 2>/dev/null || true
}

api() {
  # The app registration that app tokens are issued for: its client id is the audience of v2.0
  # access tokens, so it is AUTH_AUDIENCE (jwt) and the Easy Auth client id (easyauth).
  app_id=$(az ad app create --display-name "switchboard-api-$ENV_NAME" \
    --sign-in-audience AzureADMyOrg --query appId --output tsv)
  object_id=$(az ad app show --id "$app_id" --query id --output tsv)
  scope_id=$(python3 -c 'import uuid; print(uuid.uuid4())')
  az ad app update --id "$app_id" --identifier-uris "api://$app_id"
  # v2.0 access tokens (issuer https://login.microsoftonline.com/<tenant>/v2.0, as AUTH_ISSUER
  # defaults to) and one delegated scope clients ask for: api://<client id>/access_as_user.
  az rest --method PATCH --url "https://graph.microsoft.com/v1.0/applications/$object_id" \
    --headers Content-Type=application/json --body "{
      \"api\": {
        \"requestedAccessTokenVersion\": 2,
        \"oauth2PermissionScopes\": [{
          \"id\": \"$scope_id\", \"value\": \"access_as_user\", \"type\": \"User\",
          \"isEnabled\": true,
          \"adminConsentDisplayName\": \"Use Switchboard\",
          \"adminConsentDescription\": \"Call Switchboard as the signed-in user.\",
          \"userConsentDisplayName\": \"Use Switchboard\",
          \"userConsentDescription\": \"Call Switchboard as you.\"
        }]
      }
    }"
  az ad sp create --id "$app_id" --output none 2>/dev/null || true
  azd env set AUTH_AUDIENCE "$app_id"
  # Only delegated tokens with this scope are users (docs/production-sign-in.md).
  azd env set AUTH_REQUIRED_SCOPE access_as_user
  echo "AUTH_AUDIENCE=$app_id AUTH_REQUIRED_SCOPE=access_as_user (scope api://$app_id/access_as_user)"
}

teams() {
  # The public client app Teams users sign in to before exchanging their Entra token for an ACS
  # token (POST /api/token/teams). It needs ACS's delegated Teams.ManageCalls and
  # Teams.ManageChats permissions, looked up by name on the ACS service principal.
  scopes=$(az ad sp show --id "$ACS_APP_ID" \
    --query "oauth2PermissionScopes[?value=='Teams.ManageCalls' || value=='Teams.ManageChats'].id" \
    --output tsv)
  access=""
  for id in $scopes; do
    access="$access${access:+,}{\"id\":\"$id\",\"type\":\"Scope\"}"
  done
  app_id=$(az ad app create --display-name "switchboard-teams-$ENV_NAME" \
    --sign-in-audience AzureADMultipleOrgs --is-fallback-public-client true \
    --public-client-redirect-uris "http://localhost" \
    --required-resource-accesses "[{\"resourceAppId\":\"$ACS_APP_ID\",\"resourceAccess\":[$access]}]" \
    --query appId --output tsv)
  azd env set TEAMS_CLIENT_ID "$app_id"
  echo "TEAMS_CLIENT_ID=$app_id"
}

meetings() {
  organizer=${1:?usage: setup-graph.sh meetings <organizer UPN or object id>}
  principal_id=$(env_value AZURE_IDENTITY_PRINCIPAL_ID)
  client_id=$(env_value AZURE_CLIENT_ID)
  [ -n "$principal_id" ] || { echo "run azd provision first" >&2; exit 1; }
  # Application permission OnlineMeetings.ReadWrite.All for the app's managed identity: an app
  # role assignment on its service principal (managed identities have no consent screen).
  graph_sp=$(az ad sp show --id "$GRAPH_APP_ID" --query id --output tsv)
  role_id=$(az ad sp show --id "$GRAPH_APP_ID" \
    --query "appRoles[?value=='OnlineMeetings.ReadWrite.All'].id | [0]" --output tsv)
  existing=$(az rest --method GET \
    --url "https://graph.microsoft.com/v1.0/servicePrincipals/$principal_id/appRoleAssignments" \
    --query "value[?appRoleId=='$role_id'] | length(@)" --output tsv)
  if [ "$existing" = "0" ]; then
    az rest --method POST \
      --url "https://graph.microsoft.com/v1.0/servicePrincipals/$principal_id/appRoleAssignments" \
      --headers Content-Type=application/json \
      --body "{\"principalId\":\"$principal_id\",\"resourceId\":\"$graph_sp\",\"appRoleId\":\"$role_id\"}" \
      --output none
  fi
  organizer_id=$(az ad user show --id "$organizer" --query id --output tsv)
  azd env set MEETINGS_ORGANIZER_ID "$organizer_id"
  echo "MEETINGS_ORGANIZER_ID=$organizer_id"
  echo "Now let the identity act for that organizer in Teams (Teams PowerShell, a Teams admin):"
  echo "  pwsh infra/scripts/teams-access-policy.ps1 -AppId $client_id -Organizer $organizer"
}

case "${1:-}" in
  api) api ;;
  teams) teams ;;
  meetings) shift; meetings "$@" ;;
  *) sed -n '2,16p' "$0"; exit 2 ;;
esac
