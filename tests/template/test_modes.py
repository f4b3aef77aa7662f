"""template.yaml rendered in each of its modes (new or existing tables and HTTP API, keys inline or from the
provider, every deployment type) through the SAM transform (samtranslator, as `sam deploy` applies it), parameters
and conditions evaluated (cloud-radar), without an AWS account: which resources exist, the function's tables, the
ARNs and keys its policy names, where the routes go, which alarms roll a deployment back, and which parameter
values are refused before anything is created."""

import copy
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from cloud_radar.cf.unit import Template
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
REGION = "eu-central-1"
REQUIRED = {"AuthIssuer": "https://idp.example/", "AuthAudience": "netbird",
            "AuthOidcConfigEndpoint": "https://idp.example/.well-known/openid-configuration"}
# Logical ids of a stack deployed before the modes existed: an update with the defaults keeps every one of them.
DEFAULT_IDS = {"TokensTable", "UsersTable", "KeyCacheTable", "DeleteTokenFunction", "DeleteTokenFunctionRole",
               "DeleteTokenFunctionDeleteTokenPermission", "DeleteTokenFunctionPreflightPermission", "HttpApi",
               "HttpApiApiGatewayDefaultStage", "DeleteTokenLogGroup", "ApiAccessLogGroup", "ErrorsAlarm",
               "Api5xxAlarm", "ThrottlesAlarm"}
ALIAS = "DeleteTokenFunctionAliaslive"
PERMISSIONS = {"DeleteTokenFunctionDeleteTokenPermission": "DELETE",
               "DeleteTokenFunctionPreflightPermission": "OPTIONS"}

os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
# The template as `sam deploy` uploads it: sam build/package put the built code in S3, the transform wants its URI.
SAM = yaml_parse(TEMPLATE.read_text())
SAM["Resources"]["DeleteTokenFunction"]["Properties"]["CodeUri"] = "s3://artifacts/delete-token.zip"


def render(**params):
    """The stack `params` make: the SAM transform with those parameters (as CloudFormation applies it; the template
    names no managed policy, so nothing to look up in IAM), then parameters and conditions evaluated."""
    params = {**REQUIRED, **params}
    transformed = transform(copy.deepcopy(SAM), params, SimpleNamespace(load=dict))
    return Template(transformed).create_stack(params, region=REGION)


def props(stack, name):
    return stack.get_resource(name)["Properties"]


def ids(stack):
    return set(stack.data["Resources"])


def tables(stack):
    """The function's TOKENS_TABLE, USERS_TABLE and KEY_CACHE_TABLE ("" when unset)."""
    env = props(stack, "DeleteTokenFunction")["Environment"]["Variables"]
    return tuple(env.get(f"{name}_TABLE", "") for name in ("TOKENS", "USERS", "KEY_CACHE"))


def table_arn(account, name, index=None):
    arn = f"arn:aws:dynamodb:{REGION}:{account}:table/{name}"
    return f"{arn}/index/{index}" if index else arn


def statements(stack):
    """The role's statements by Sid (cloud-radar leaves an AWS::NoValue in a list as "", which CloudFormation
    removes)."""
    policies = props(stack, "DeleteTokenFunctionRole")["Policies"]
    return {s["Sid"]: s for p in policies for s in p["PolicyDocument"]["Statement"] if s != ""}


def test_defaults_keep_every_logical_id_and_create_everything():
    stack = render()
    assert DEFAULT_IDS <= ids(stack)
    assert not {"ExistingApiIntegration", "ExistingApiDeleteRoute", "ExistingApiPreflightRoute"} & ids(stack)
    assert tables(stack) == ("TokensTable", "UsersTable", "KeyCacheTable")
    for table in ("TokensTable", "UsersTable"):
        assert {stack.data["Resources"][table][p] for p in ("DeletionPolicy", "UpdateReplacePolicy")} == {"Retain"}
    route = props(stack, "HttpApi")["Body"]["paths"]["/api/users/{userId}/tokens/{tokenId}"]
    for method in ("delete", "options"):
        integration = route[method]["x-amazon-apigateway-integration"]
        assert (integration["type"], integration["payloadFormatVersion"]) == ("aws_proxy", "2.0")
        assert integration["uri"].endswith(f"/functions/{ALIAS}/invocations")
    for name, method in PERMISSIONS.items():
        assert props(stack, name)["SourceArn"].endswith(f":HttpApi/*/{method}/api/users/*/tokens/*")
    assert "HttpApi" in stack.data["Outputs"]["ApiUrl"]["Value"]


@pytest.mark.parametrize("tokens,users,keys",
                         [("nb-tokens-prod", "nb-users-prod", "nb-keys-prod"), ("tok", "usr", "")])
def test_existing_tables_are_used_and_never_created(tokens, users, keys):
    stack = render(TokensTableName=tokens, UsersTableName=users, KeyCacheTableName=keys)
    assert not {"TokensTable", "UsersTable"} & ids(stack)
    assert ("KeyCacheTable" in ids(stack)) == (keys == "")
    assert tables(stack) == (tokens, users, keys or "KeyCacheTable")
    account = props(stack, "DeleteTokenFunctionDeleteTokenPermission")["SourceArn"].split(":")[4]
    policy = {sid: s["Resource"] for sid, s in statements(stack).items()}
    assert policy["DeleteTokens"] == policy["MarkTokensUsed"] == table_arn(account, tokens)
    assert policy["FindTokensByHash"] == table_arn(account, tokens, "hashedToken-index")
    assert policy["ReadUsers"] == table_arn(account, users)
    assert not keys or policy["ShareProviderKeys"] == table_arn(account, keys)
    outputs = stack.data["Outputs"]
    assert (outputs["TokensTableName"]["Value"], outputs["UsersTableName"]["Value"]) == (tokens, users)


@pytest.mark.parametrize("api_id", ["a1b2c3d4e5", "zz9yy8xx7w"])
def test_an_existing_api_gets_the_two_routes(api_id):
    stack = render(HttpApiId=api_id)
    assert not {"HttpApi", "HttpApiApiGatewayDefaultStage", "ApiAccessLogGroup", "Api5xxAlarm"} & ids(stack)
    integration = props(stack, "ExistingApiIntegration")
    assert integration["ApiId"] == api_id
    assert (integration["IntegrationType"], integration["PayloadFormatVersion"]) == ("AWS_PROXY", "2.0")
    assert integration["IntegrationUri"] == ALIAS, "the API invokes the alias"
    routes = [props(stack, name) for name in ("ExistingApiDeleteRoute", "ExistingApiPreflightRoute")]
    keys = {f"{method} /api/users/{{userId}}/tokens/{{tokenId}}" for method in ("DELETE", "OPTIONS")}
    assert {r["RouteKey"] for r in routes} == keys
    for route in routes:
        assert (route["ApiId"], route["Target"]) == (api_id, "integrations/ExistingApiIntegration")
    for name, method in PERMISSIONS.items():
        permission = props(stack, name)
        assert permission["FunctionName"] == ALIAS, "the permission names the alias"
        assert permission["SourceArn"].startswith(f"arn:aws:execute-api:{REGION}:")
        assert permission["SourceArn"].endswith(f":{api_id}/*/{method}/api/users/*/tokens/*")
    assert stack.data["Outputs"]["ApiUrl"]["Value"] == f"https://{api_id}.execute-api.{REGION}.amazonaws.com"
    assert "AccessLogGroupName" not in stack.data["Outputs"]


def test_existing_tables_and_api_together():
    stack = render(TokensTableName="tok", UsersTableName="usr", KeyCacheTableName="kcache", HttpApiId="q7w8e9r0t1")
    assert not {"TokensTable", "UsersTable", "KeyCacheTable", "HttpApi"} & ids(stack)
    assert {"DeleteTokenFunction", "ExistingApiIntegration", "ExistingApiDeleteRoute", "ExistingApiPreflightRoute",
            "DeleteTokenLogGroup", "ErrorsAlarm", "ThrottlesAlarm"} <= ids(stack)
    assert tables(stack) == ("tok", "usr", "kcache")


def test_the_template_is_publishable_as_an_application():
    metadata, root = SAM["Metadata"]["AWS::ServerlessRepo::Application"], TEMPLATE.parent
    for field in ("Name", "Description", "Author", "SpdxLicenseId", "LicenseUrl", "ReadmeUrl", "SemanticVersion"):
        assert metadata[field], field
    assert (root / metadata["LicenseUrl"]).is_file() and (root / metadata["ReadmeUrl"]).is_file()
    version = next(l for l in (root / "Cargo.toml").read_text().splitlines() if l.startswith("version"))
    assert metadata["SemanticVersion"] in version, "the application and the crate have one version"


@pytest.mark.parametrize("cap", ["7", "250"])
def test_max_concurrency_reserves_that_many_instances(cap):
    assert int(props(render(MaxConcurrency=cap), "DeleteTokenFunction")["ReservedConcurrentExecutions"]) == int(cap)
    assert "ReservedConcurrentExecutions" not in props(render(), "DeleteTokenFunction"), "0, the default, sets no cap"


@pytest.mark.parametrize("deployment_type", SAM["Parameters"]["DeploymentType"]["AllowedValues"])
def test_every_deployment_type_publishes_behind_the_alias_and_rolls_back_on_the_functions_alarms(deployment_type):
    stack = render(DeploymentType=deployment_type)
    assert props(stack, ALIAS)["Name"] == "live"
    group = props(stack, "DeleteTokenFunctionDeploymentGroup")
    assert group["DeploymentConfigName"] == f"CodeDeployDefault.Lambda{deployment_type}"
    assert {a["Name"] for a in group["AlarmConfiguration"]["Alarms"]} == {"ErrorsAlarm", "InvocationErrorsAlarm"}
    assert group["AlarmConfiguration"]["Enabled"] is True
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
    dimensions = {d["Name"]: d["Value"] for d in props(stack, "InvocationErrorsAlarm")["Dimensions"]}
    assert dimensions == {"FunctionName": "DeleteTokenFunction", "Resource": "DeleteTokenFunction:live"}


@pytest.mark.parametrize("cache", ["shared", ""])
def test_inline_keys_need_no_key_cache_at_all(cache):
    stack = render(AuthOidcConfigEndpoint="", AuthJwks='{"keys": []}', KeyCacheTableName=cache)
    assert not {"KeyCacheTable", "KeysStaleAlarm"} & ids(stack)
    assert tables(stack)[2] == ""
    assert "ShareProviderKeys" not in statements(stack)
    assert "KeyCacheTableName" not in stack.data["Outputs"]


@pytest.mark.parametrize("params,leading_key", [
    ({}, "oidc https://idp.example/.well-known/openid-configuration https://idp.example/"),
    ({"AuthKeysLocation": "https://idp.example/keys"}, "jwks https://idp.example/keys"),
])
def test_the_function_may_read_and_write_only_its_own_key_sources_cache_item(params, leading_key):
    """The key is the one the function computes (its unit test holds the same two strings): the setting as
    written, with the issuer for discovery."""
    share = statements(render(**params))["ShareProviderKeys"]
    assert share["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"] == [leading_key]
    assert set(share["Action"]) == {"dynamodb:GetItem", "dynamodb:PutItem"}


@pytest.mark.parametrize("name,value", [(name, value) for name, values in {
    "TokensTableName": ["*", "tokens*"], "UsersTableName": ["users/other"], "KeyCacheTableName": ["k"],
    "HttpApiId": ["not-an-id"], "AuthIssuer": ["", "https://idp.example/ x"], "AuthAudience": [" , "],
    "AuthKeysLocation": ["http://idp.example/keys"], "AuthOidcConfigEndpoint": ["https://idp.example/ with space"],
    "AuthJwks": ["not json"], "AuthUserIdClaim": [""], "AuthJwtAllowGroups": [" , "], "RateLimitingBurst": ["0"],
    "RateLimitingRpm": ["0", "60001"], "MaxConcurrency": ["-1"], "ThrottleRateLimit": ["0"], "LogLevel": ["VERBOSE"],
    "KeysStaleAlarmHours": ["24", "0"], "AlarmTopicArn": ["arn:aws:sns:eu-central-1:123:topic"],
    "DeploymentType": ["Canary50Percent1Minute"],
}.items() for value in values])
def test_values_that_cannot_be_right_are_refused_before_anything_is_created(name, value):
    with pytest.raises(ValueError):
        render(**{name: value})


def test_values_that_can_be_right_are_taken():
    stack = render(TokensTableName="NetBird.tokens_v2", HttpApiId="a1b2c3d4e5", AuthAudience="netbird, cli",
                   AuthJwtGroupsClaim="groups", AuthJwtAllowGroups="admins, ops", LogLevel="WARN",
                   AlarmTopicArn="arn:aws:sns:eu-central-1:123456789012:ops-alerts", MaxConcurrency="0",
                   RateLimitingRpm="60000")
    function = props(stack, "DeleteTokenFunction")
    assert function["Environment"]["Variables"]["AUTH_JWT_ALLOW_GROUPS"] == "admins, ops"
    assert function["LoggingConfig"]["ApplicationLogLevel"] == "WARN"


RULE_FUNCTIONS = {"Fn::Or": any, "Fn::And": all, "Fn::Not": lambda a: not a[0], "Fn::Equals": lambda a: a[0] == a[1]}


def rule_holds(expression, params):
    """A Rules assertion (the functions above, and Ref) on `params`, as CloudFormation evaluates it."""
    ((function, value),) = expression.items()
    if function == "Ref":
        return params[value]
    return RULE_FUNCTIONS[function]([rule_holds(a, params) if isinstance(a, dict) else a for a in value])


def rules_refusing(params):
    """The rules refusing `params` (with the defaults and REQUIRED), once per failing assertion."""
    values = {k: str(v.get("Default", "")) for k, v in SAM["Parameters"].items()} | REQUIRED | params
    return [name for name, rule in SAM["Rules"].items() for a in rule["Assertions"]
            if ("RuleCondition" not in rule or rule_holds(rule["RuleCondition"], values))
            and not rule_holds(a["Assert"], values)]


def test_rules_refuse_what_no_single_parameter_can():
    assert rules_refusing({}) == []
    assert rules_refusing({"AuthOidcConfigEndpoint": ""}) == ["OneKeySource"]
    assert rules_refusing({"AuthJwks": "{}", "AuthOidcConfigEndpoint": ""}) == []
    assert rules_refusing({"AuthJwtAllowGroups": "admins"}) == ["AllowedGroupsNeedTheirClaim"]
    assert rules_refusing({"AuthJwtAllowGroups": "admins", "AuthJwtGroupsClaim": "groups"}) == []


def test_the_dashboard_and_the_saved_queries_read_this_functions_logs_and_series():
    """Their names and contents are the operations page's, which tests/documents.rs holds to this template;
    here, that each reads this stack's own log group and metric series."""
    stack = render()
    widgets = json.loads(props(stack, "Dashboard")["DashboardBody"])["widgets"]
    queries = [w["properties"]["query"] for w in widgets if w["type"] == "log"]
    metrics = [m for w in widgets for m in w["properties"].get("metrics", []) if m[0] == "NetBird/DeleteToken"]
    assert queries and metrics, "the dashboard reads the log and the metrics"
    assert all(q.startswith("SOURCE 'DeleteTokenLogGroup'") for q in queries), queries
    assert all(m[2:4] == ["FunctionName", "DeleteTokenFunction"] for m in metrics), metrics
    saved = [n for n, r in stack.data["Resources"].items() if r["Type"] == "AWS::Logs::QueryDefinition"]
    assert saved and all(props(stack, n)["LogGroupNames"] == ["DeleteTokenLogGroup"] for n in saved)
    assert int(props(render(KeysStaleAlarmHours="2"), "KeysStaleAlarm")["Threshold"]) == 2


def test_each_alarm_reads_only_its_own_functions_series():
    """Two stacks in one account and region: the function writes its name as the metrics' dimension, and every
    alarm on them names it."""
    stack = render()
    for name in ("ErrorsAlarm", "KeysStaleAlarm"):
        alarm = props(stack, name)
        for metric in [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m] or [alarm]:
            assert metric["Namespace"] == "NetBird/DeleteToken"
            assert metric["Dimensions"] == [{"Name": "FunctionName", "Value": "DeleteTokenFunction"}], name


@pytest.mark.parametrize("tracing", ["true", "false"])
def test_the_role_writes_only_its_own_log_group_and_traces_only_when_tracing(tracing):
    stack = render(EnableTracing=tracing)
    assert "ManagedPolicyArns" not in props(stack, "DeleteTokenFunctionRole"), "no managed policy: only the statements"
    function = props(stack, "DeleteTokenFunction")
    assert function["Role"] == "DeleteTokenFunctionRole.Arn"
    assert function["LoggingConfig"]["LogGroup"] == "DeleteTokenLogGroup"
    policy = statements(stack)
    assert set(policy["WriteOwnLog"]["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert policy["WriteOwnLog"]["Resource"] == "DeleteTokenLogGroup.Arn", "the group's streams, no other group"
    assert ("WriteTraces" in policy) == (tracing == "true")
    actions = [a for s in policy.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert {a.split(":")[0] for a in actions} <= {"logs", "xray", "dynamodb"}
    assert "logs:CreateLogGroup" not in actions


def test_an_update_from_0_2_0_replaces_no_table():
    """What CloudFormation replaces an AWS::DynamoDB::Table for (the rest it updates in place) is as 0.2.0 had it."""
    released = yaml_parse((Path(__file__).parent / "tables-0.2.0.yaml").read_text())
    types = lambda table: {d["AttributeName"]: d["AttributeType"] for d in table["Properties"]["AttributeDefinitions"]}
    for logical_id, before in released.items():
        now = SAM["Resources"][logical_id]
        assert now["Type"] == before["Type"]
        for name in ("TableName", "KeySchema", "LocalSecondaryIndexes"):
            assert now["Properties"].get(name) == before["Properties"].get(name), (logical_id, name)
        keys = {k["AttributeName"] for k in now["Properties"]["KeySchema"]}
        assert {k: types(now)[k] for k in keys} == {k: types(before)[k] for k in keys}, logical_id
        assert all(now[p] == before[p] for p in ("DeletionPolicy", "UpdateReplacePolicy")), logical_id
    assert set(released) <= ids(render()), "and with the defaults every one of them is still there"
