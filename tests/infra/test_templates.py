"""Structural checks of infra/: what a Bicep compiler cannot be asked here, read from the syntax.

Each test names the deployment mistake it catches: a file that does not parse, an app setting the
code reads but Azure never gets (or one nobody reads), a container the app needs but nobody
created, a key or connection string leaking into an app setting or an output, a resource left with
local (key) auth on, a role assignment to the wrong principal or with a broader role than the one
named for that scope, and a required parameter that `azd` would never fill.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from switchboard.ports import CONTAINERS
from switchboard.settings import (
    APP_SETTING_NAMES,
    EMBEDDED_ONLY_SETTING_NAMES,
    SECRET_SETTING_NAMES,
)
from tests.infra.bicep import (
    INFRA,
    Expr,
    Resource,
    bicep_files,
    load,
    resources_of,
    syntax_errors,
)

MAIN = INFRA / "main.bicep"
FUNCTION_APP = INFRA / "modules" / "functionapp.bicep"

# Settings the platform reads, not the app: identity-based host storage and telemetry. Listed one by
# one so a new platform setting is a deliberate change here, not something a pattern lets through.
PLATFORM_SETTINGS = frozenset(
    {
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        # The Cosmos DB trigger's identity-based connection (blueprints/reactions.py).
        "COSMOS__accountEndpoint",
        "COSMOS__credential",
        "COSMOS__clientId",
        # Read by the Functions Python worker: it carries the host's trace context into the
        # app's OpenTelemetry spans.
        "PYTHON_ENABLE_OPENTELEMETRY",
    }
)
# Flex Consumption derives these from functionAppConfig and rejects them as app settings.
FLEX_REJECTED_SETTINGS = frozenset(
    {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"}
)

# The least role for each scope the app identity is granted on (built-in role definition ids).
ROLE_FOR_SCOPE = {
    "Microsoft.Storage/storageAccounts": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Blob Data Owner
    "Microsoft.Insights/components": "3913510d-42f4-4e42-8a64-420c390055eb",  # Metrics Publisher
    # Communication and Email Service Owner
    "Microsoft.Communication/communicationServices": "09976791-48a7-449e-bb21-39d1a415f350",
    # Key Vault Secrets User: read the push hub's Send-rights connection string, nothing else.
    "Microsoft.KeyVault/vaults": "4633458b-17de-408a-b874-0445c86b69e6",
}
NOTIFICATION_HUBS = INFRA / "modules" / "notificationhubs.bicep"
# The one key in the whole deployment: the hub's data plane takes SAS only. It may appear in
# exactly this place, a Send-only rule's connection string written into a Key Vault secret.
THE_ONE_KEY_CALL = "sendRule.listKeys().primaryConnectionString"
# Secure parameters exist only to hand the hub its push-service credentials (APNs, FCM v1).
PUSH_CREDENTIAL_PARAMS = frozenset({"apnsKey", "fcmPrivateKey"})
COSMOS_DATA_CONTRIBUTOR = "00000000-0000-0000-0000-000000000002"

# What a key or connection string looks like in Bicep: list*() functions and key properties.
SECRET_PATTERNS = [
    re.compile(r"\blist[A-Za-z]*\s*\(", re.IGNORECASE),  # listKeys(), listConnectionStrings() ...
    re.compile(r"(primary|secondary)(Master|ReadonlyMaster)?Key", re.IGNORECASE),
    re.compile(r"(primary|secondary)ConnectionString", re.IGNORECASE),
    re.compile(r"AccountKey\s*=", re.IGNORECASE),
    re.compile(r"SharedAccessSignature|\bsas\b", re.IGNORECASE),
    re.compile(r"InstrumentationKey", re.IGNORECASE),
    re.compile(r"\bsecret\b", re.IGNORECASE),
]


def _text(value: Any) -> str:
    """A setting's or output's value as source-like text, for pattern checks."""
    return value.text if isinstance(value, Expr) else json.dumps(value)


def _app_settings() -> dict[str, Any]:
    [settings] = [
        res
        for res in resources_of("Microsoft.Web/sites/config")
        if res.body["name"] == "appsettings"
    ]
    properties = settings.body["properties"]
    assert isinstance(properties, dict)
    return properties


def _outputs() -> list[tuple[Path, str, Any]]:
    return [(path, name, val) for path in bicep_files() for name, val in load(path).outputs.items()]


# --- parsing -----------------------------------------------------------------------------------


def test_infra_has_the_azd_layout() -> None:
    assert MAIN.is_file()
    assert (INFRA / "main.parameters.json").is_file()
    assert len(list((INFRA / "modules").glob("*.bicep"))) >= 5


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path) -> None:
    assert syntax_errors(path.read_bytes()) == []


def test_a_broken_template_is_reported() -> None:
    """The parse check itself can fail: an unclosed object and a missing value are caught."""
    good = MAIN.read_bytes()
    assert syntax_errors(good.replace(b"scope: rg\n", b"scope: \n", 1))
    assert syntax_errors(good.rstrip().rstrip(b"}") + b"\nresource x 'a/b@1' = {\n  name: 'x'\n")


def test_every_module_path_exists() -> None:
    for path in bicep_files():
        for symbol, (module_path, _) in load(path).modules.items():
            assert (path.parent / module_path).is_file(), f"{path.name}: module {symbol}"


# --- app settings ------------------------------------------------------------------------------


def test_app_settings_are_exactly_what_the_code_reads() -> None:
    expected = APP_SETTING_NAMES - SECRET_SETTING_NAMES - EMBEDDED_ONLY_SETTING_NAMES
    names = set(_app_settings())
    app_names = names - PLATFORM_SETTINGS
    assert expected - app_names == set(), "read by the code but never set in Azure"
    assert app_names - expected == set(), "set in Azure but read by nobody"


def test_no_key_based_setting_is_set() -> None:
    assert set(_app_settings()) & SECRET_SETTING_NAMES == set()
    assert set(_app_settings()) & FLEX_REJECTED_SETTINGS == set()


def test_azure_settings_select_the_azure_adapters() -> None:
    settings = _app_settings()
    assert settings["SWITCHBOARD_STORE"] == "cosmos"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    # One identity for everything: AZURE_CLIENT_ID and the host's storage client id are the same.
    assert isinstance(settings["AZURE_CLIENT_ID"], Expr)
    assert settings["AzureWebJobsStorage__clientId"] == settings["AZURE_CLIENT_ID"]
    assert "Authorization=AAD" in _text(settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"])
    for name in ("COSMOS_ENDPOINT", "COSMOS_DATABASE", "ACS_ENDPOINT", "AUTH_MODE"):
        assert settings[name] not in ("", None), name


def test_auth_mode_is_required_and_never_dev() -> None:
    for path in (MAIN, FUNCTION_APP):
        param = load(path).params["authMode"]
        assert not param.has_default, f"{path.name}: AUTH_MODE must be chosen, not defaulted"
        assert sorted(param.decorators["allowed"]) == ["easyauth", "jwt"]


def test_no_app_setting_holds_a_secret() -> None:
    for name, val in _app_settings().items():
        if name == "APPLICATIONINSIGHTS_CONNECTION_STRING":
            # Documented as not a secret, and useless without an Entra token once local auth is off
            # (checked below); it must still come from the resource, never from a key call.
            assert _text(val) == "applicationInsights.properties.ConnectionString"
            continue
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(_text(val)), f"{name} = {_text(val)}"


def test_no_output_holds_a_secret() -> None:
    outputs = _outputs()
    assert outputs
    for path, name, val in outputs:
        where = f"{path.name}: output {name}"
        assert not re.search(r"key|secret|password|connection_?string", name, re.I), where
        assert not re.search(r"ConnectionString", _text(val)), where
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(_text(val)), where


def _code(path: Path) -> str:
    return "\n".join(
        line for line in path.read_text().splitlines() if not line.lstrip().startswith("//")
    )


def test_no_template_calls_a_key_function_but_the_push_hubs_one() -> None:
    for path in bicep_files():
        calls = re.findall(
            r"[\w.]*\blist(?:Keys|ConnectionStrings|AccountSas|ServiceSas)\s*\([^)]*\)[\w.]*",
            _code(path),
        )
        if path == NOTIFICATION_HUBS:
            assert calls == [THE_ONE_KEY_CALL], calls
        else:
            assert calls == [], path.name


def test_the_one_key_is_send_only_and_lives_only_in_key_vault() -> None:
    module = load(NOTIFICATION_HUBS)
    [rule] = resources_of(
        "Microsoft.NotificationHubs/namespaces/notificationHubs/authorizationRules"
    )
    assert rule.symbol == "sendRule"
    assert rule.body["properties"]["rights"] == ["Send"]
    assert rule.body["parent"] == Expr("hub")
    [secret] = resources_of("Microsoft.KeyVault/vaults/secrets")
    assert secret.file == NOTIFICATION_HUBS
    assert secret.body["properties"]["value"] == Expr(THE_ONE_KEY_CALL)
    [vault] = resources_of("Microsoft.KeyVault/vaults")
    assert vault.body["properties"]["enableRbacAuthorization"] is True
    assert "accessPolicies" not in vault.body["properties"]
    # Outputs hand on a reference to the secret, never its value.
    for name, value in module.outputs.items():
        assert "listKeys" not in _text(value), name
    reference = _text(module.outputs["hubReference"])
    assert reference.startswith("'@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}")


def test_the_app_reads_the_hub_key_by_key_vault_reference_with_its_identity() -> None:
    settings = _app_settings()
    assert settings["NOTIFICATION_HUB_CONNECTION_STRING"] == Expr("notificationHubReference")
    params = load(MAIN).modules["functionApp"][1]["params"]
    assert params["notificationHubReference"] == Expr("notificationHubs.outputs.hubReference")
    [site] = resources_of("Microsoft.Web/sites")
    assert site.body["properties"]["keyVaultReferenceIdentity"] == Expr("identityId")


def test_no_secure_parameter_exists_but_the_push_credentials() -> None:
    """Nothing secret is passed in, but the hub's APNs and FCM credentials (Apple's and Google's
    keys, which no managed identity replaces): and those go into the hub and nowhere else."""
    for path in bicep_files():
        for param in load(path).params.values():
            if "secure" in param.decorators:
                assert param.name in PUSH_CREDENTIAL_PARAMS, f"{path.name}: {param.name}"
    module = load(NOTIFICATION_HUBS)
    assert {n for n, p in module.params.items() if "secure" in p.decorators} == (
        PUSH_CREDENTIAL_PARAMS
    )
    [hub] = resources_of("Microsoft.NotificationHubs/namespaces/notificationHubs")
    hub_text = _code(NOTIFICATION_HUBS)
    for name in PUSH_CREDENTIAL_PARAMS:
        # Used once, inside the hub's credentials; never in an output.
        assert len(re.findall(rf"\b{name}\b", hub_text.split("resource hub", 1)[1])) == 1, name
        assert name in hub.text
        for value in module.outputs.values():
            assert name not in _text(value)
    for name, value in load(MAIN).outputs.items():
        for secret in PUSH_CREDENTIAL_PARAMS:
            assert secret not in _text(value), name


# --- Cosmos DB ---------------------------------------------------------------------------------


def _cosmos_containers() -> list[dict[str, Any]]:
    [loop] = [
        res
        for res in resources_of("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers")
        if res.loop
    ]
    variable = re.search(r"\[for (\w+) in (\w+):", loop.text)
    assert variable, loop.text
    item, source = variable.groups()
    assert loop.body["properties"]["resource"] == Expr(item)
    declared = load(loop.file).variables[source]
    assert isinstance(declared, list)
    return declared


def test_every_container_the_code_uses_is_declared_with_pk() -> None:
    declared = _cosmos_containers()
    names = [c["id"] for c in declared]
    assert sorted(names) == sorted(CONTAINERS), "containers differ from switchboard.ports"
    assert len(names) == len(set(names))
    for container in declared:
        assert container["partitionKey"]["paths"] == ["/pk"], container["id"]


def test_container_ttl_matches_the_code() -> None:
    for container in _cosmos_containers():
        assert container.get("defaultTtl") == CONTAINERS[container["id"]], container["id"]


def test_the_work_feed_trigger_has_its_leases_container_and_identity_connection() -> None:
    """The Cosmos DB trigger (blueprints/reactions.py) reads the `work` container's change feed
    with the app identity: its leases container exists (partition key /id, as the trigger
    requires; the app cannot create it), and its connection settings name the same account and
    the same identity as the app's store client, never a key."""
    from blueprints import reactions

    assert reactions.WORK_CONTAINER in CONTAINERS
    leases = [
        res
        for res in resources_of("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers")
        if not res.loop
    ]
    assert [res.body["name"] for res in leases] == [reactions.LEASES_CONTAINER]
    resource = leases[0].body["properties"]["resource"]
    assert resource["id"] == reactions.LEASES_CONTAINER
    assert resource["partitionKey"]["paths"] == ["/id"]
    assert leases[0].body["parent"] == Expr("database")  # the database the data role covers
    settings = _app_settings()
    prefix = reactions.CONNECTION
    assert settings[f"{prefix}__accountEndpoint"] == settings["COSMOS_ENDPOINT"]
    assert settings[f"{prefix}__credential"] == "managedidentity"
    assert settings[f"{prefix}__clientId"] == settings["AZURE_CLIENT_ID"]
    assert not [name for name in settings if name.startswith(f"{prefix}__") and "key" in name]


def test_cosmos_is_serverless_by_default() -> None:
    cosmos = load(INFRA / "modules" / "cosmos.bicep")
    assert cosmos.params["provisionedThroughput"].default == 0
    [account] = resources_of("Microsoft.DocumentDB/databaseAccounts")
    assert "EnableServerless" in _text(account.body["properties"]["capabilities"])


# --- local auth off ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rtype", "path"),
    [
        ("Microsoft.DocumentDB/databaseAccounts", ("properties", "disableLocalAuth")),
        ("Microsoft.Communication/communicationServices", ("properties", "disableLocalAuth")),
        ("Microsoft.Insights/components", ("properties", "DisableLocalAuth")),
        (
            "Microsoft.OperationalInsights/workspaces",
            ("properties", "features", "disableLocalAuth"),
        ),
    ],
)
def test_local_auth_is_off(rtype: str, path: tuple[str, ...]) -> None:
    declared = [res for res in resources_of(rtype) if res.body.get("properties")]
    assert declared, f"no {rtype} is declared"
    for res in declared:
        val: Any = res.body
        for key in path:
            val = val.get(key) if isinstance(val, dict) else None
        assert val is True, f"{res.file.name}: {res.symbol}"


def test_storage_shared_keys_are_off() -> None:
    [storage] = resources_of("Microsoft.Storage/storageAccounts")
    props = storage.body["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False


def test_acs_uses_an_api_version_with_disable_local_auth() -> None:
    [acs] = resources_of("Microsoft.Communication/communicationServices")
    assert acs.api_version >= "2025-05-01"
    assert acs.body["location"] == "global"
    assert isinstance(acs.body["properties"]["dataLocation"], Expr)  # a parameter


def test_flex_consumption_python_311_with_identity_deployment_storage() -> None:
    [plan] = resources_of("Microsoft.Web/serverfarms")
    assert plan.body["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    [site] = resources_of("Microsoft.Web/sites")
    assert site.body["identity"]["type"] == "UserAssigned"
    config = site.body["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    auth = config["deployment"]["storage"]["authentication"]
    assert auth["type"] == "UserAssignedIdentity"
    # The deployment container is read with the same identity the site runs as.
    assert auth["userAssignedIdentityResourceId"] == Expr("identityId")
    assert list(site.body["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]
    assert "azd-service-name" in _text(load(MAIN).modules["functionApp"][1]["params"]["appTags"])


# --- role assignments --------------------------------------------------------------------------


def _scope_type(assignment: Resource) -> str:
    scope = assignment.body.get("scope")
    assert isinstance(scope, Expr), f"{assignment.symbol} has no resource scope"
    [target] = [res for res in load(assignment.file).all_resources() if res.symbol == scope.text]
    return target.type


def test_every_role_assignment_is_the_least_role_for_the_app_identity() -> None:
    assignments = resources_of("Microsoft.Authorization/roleAssignments")
    assert {_scope_type(a) for a in assignments} == set(ROLE_FOR_SCOPE), "a grant is missing"
    for assignment in assignments:
        where = f"{assignment.file.name}: {assignment.symbol}"
        module = load(assignment.file)
        props = assignment.body["properties"]
        assert props["principalId"] == Expr("appPrincipalId"), where
        assert props["principalType"] == "ServicePrincipal", where
        role = re.search(r"roleDefinitions', (\w+)\)", _text(props["roleDefinitionId"]))
        assert role, where
        role_id = module.variables.get(role.group(1), role.group(1))
        assert role_id == ROLE_FOR_SCOPE[_scope_type(assignment)], where


def test_cosmos_grant_is_data_contributor_on_the_database() -> None:
    [assignment] = resources_of("Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments")
    props = assignment.body["properties"]
    variables = load(assignment.file).variables
    assert props["principalId"] == Expr("appPrincipalId")
    role = _text(props["roleDefinitionId"])
    assert role.endswith("/sqlRoleDefinitions/${cosmosDataContributorRoleId}'")
    assert variables["cosmosDataContributorRoleId"] == COSMOS_DATA_CONTRIBUTOR
    assert _text(props["scope"]).endswith("/dbs/${database.name}'"), "scope is the database"


def test_every_grant_goes_to_the_one_app_identity() -> None:
    """Each module's appPrincipalId is wired to the user-assigned identity, nothing else."""
    main = load(MAIN)
    granting = {path.name for path in bicep_files() if "appPrincipalId" in load(path).params} - {
        MAIN.name
    }
    wired = set()
    for _symbol, (module_path, body) in main.modules.items():
        principal = body["params"].get("appPrincipalId")
        if principal is not None:
            assert principal == Expr("identity.outputs.principalId"), module_path
            wired.add(Path(module_path).name)
    assert wired == granting
    [identity] = resources_of("Microsoft.ManagedIdentity/userAssignedIdentities")
    assert identity.file.name == "identity.bicep"


# --- parameters --------------------------------------------------------------------------------


def test_parameters_file_provides_every_required_parameter() -> None:
    document = json.loads((INFRA / "main.parameters.json").read_text())
    provided = document["parameters"]
    params = load(MAIN).params
    required = {name for name, param in params.items() if not param.has_default}
    assert {"environmentName", "location", "authMode"} <= required
    assert required - set(provided) == set(), "azd would leave these unset"
    assert set(provided) - set(params) == set(), "parameters main.bicep does not declare"
    for name, entry in provided.items():
        assert re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*(=[^}]*)?\}", entry["value"]), name
    assert provided["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert provided["location"]["value"] == "${AZURE_LOCATION}"


def test_phone_numbers_are_empty_parameters() -> None:
    params = load(MAIN).params
    for name in ("smsFrom", "pstnCallerId"):
        assert params[name].has_default, name
        assert params[name].default == "", name


def test_every_module_parameter_without_default_is_passed() -> None:
    main = load(MAIN)
    for symbol, (module_path, body) in main.modules.items():
        module = load((MAIN.parent / module_path).resolve())
        passed = set(body["params"])
        required = {name for name, p in module.params.items() if not p.has_default}
        assert required - passed == set(), f"module {symbol} misses parameters"
        assert passed - set(module.params) == set(), f"module {symbol} gets unknown parameters"
