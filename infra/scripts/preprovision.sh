#!/bin/sh
# azd preprovision hook: stop before provisioning a Function App that would refuse to start.
# The app refuses AUTH_MODE=dev in Azure and needs AUTH_AUDIENCE for jwt (and for easyauth, whose
# Entra app registration it names), so both must be set in the azd environment first.
set -eu

fail() {
  echo "switchboard: $1" >&2
  exit 1
}

case "${AUTH_MODE:-}" in
  jwt | easyauth) ;;
  "") fail "AUTH_MODE is not set. Run: azd env set AUTH_MODE jwt   (or easyauth; dev is refused in Azure)" ;;
  *) fail "AUTH_MODE is '${AUTH_MODE}'; in Azure it must be jwt or easyauth" ;;
esac

if [ -z "${AUTH_AUDIENCE:-}" ]; then
  fail "AUTH_AUDIENCE is not set. Create the API app registration (infra/scripts/setup-graph.sh api) or run: azd env set AUTH_AUDIENCE <the API app registration's client id>"
fi

if [ -z "${SMS_FROM:-}" ]; then
  echo "switchboard: SMS_FROM is empty: the app will run without SMS (azd env set SMS_FROM +1...)."
fi
if [ -z "${PSTN_CALLER_ID:-}" ]; then
  echo "switchboard: PSTN_CALLER_ID is empty: friends' call info will carry no PSTN numbers."
fi
