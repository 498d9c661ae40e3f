# The Teams application access policy that lets the app's identity create online meetings on
# behalf of the organizer (Graph's OnlineMeetings.ReadWrite.All alone is not enough). Only Teams
# PowerShell can make it; run it once as a Teams administrator. Changes take up to 30 minutes.
#
#   pwsh infra/scripts/teams-access-policy.ps1 -AppId <AZURE_CLIENT_ID> -Organizer <UPN>
param(
    [Parameter(Mandatory = $true)][string]$AppId,
    [Parameter(Mandatory = $true)][string]$Organizer,
    [string]$PolicyName = 'Switchboard-Meetings'
)
$ErrorActionPreference = 'Stop'
if (-not (Get-Module -ListAvailable -Name MicrosoftTeams)) {
    Install-Module -Name MicrosoftTeams -Scope CurrentUser -Force
}
Import-Module MicrosoftTeams
Connect-MicrosoftTeams | Out-Null
if (Get-CsApplicationAccessPolicy -Identity $PolicyName -ErrorAction SilentlyContinue) {
    Set-CsApplicationAccessPolicy -Identity $PolicyName -AppIds @{ Add = $AppId }
} else {
    New-CsApplicationAccessPolicy -Identity $PolicyName -AppIds $AppId `
        -Description 'Switchboard schedules Teams meetings for this organizer'
}
Grant-CsApplicationAccessPolicy -PolicyName $PolicyName -Identity $Organizer
Write-Host "Policy $PolicyName lets app $AppId create meetings for $Organizer."
