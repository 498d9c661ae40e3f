# azd preprovision hook (Windows): the same checks as preprovision.sh.
$ErrorActionPreference = 'Stop'
if ($env:AUTH_MODE -notin @('jwt', 'easyauth')) {
    Write-Error "switchboard: AUTH_MODE must be jwt or easyauth (dev is refused in Azure). Run: azd env set AUTH_MODE jwt"
    exit 1
}
if (-not $env:AUTH_AUDIENCE) {
    Write-Error "switchboard: AUTH_AUDIENCE is not set. Run: azd env set AUTH_AUDIENCE <the API app registration's client id>"
    exit 1
}
if (-not $env:SMS_FROM) { Write-Host 'switchboard: SMS_FROM is empty: the app will run without SMS.' }
if (-not $env:PSTN_CALLER_ID) { Write-Host 'switchboard: PSTN_CALLER_ID is empty: no PSTN numbers in call info.' }
