"""template.yaml rendered in each of its modes (new or existing tables, new
or existing HTTP API, keys inline or from the provider, every deployment
type), with the SAM transform applied (samtranslator, as `sam deploy`
applies it) and parameters and conditions evaluated (cloud-radar), without
an AWS account: which resources exist, the tables the function gets, the
ARNs and keys its policy names, where the routes go, which alarms roll a
deployment back, and which parameter values are refused before anything is
created."""

import copy
import json
import os
from pathlib import Path

import pytest
from cloud_radar.cf.unit import Template
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
REGION = "eu-central-1"
REQUIRED = {
    "AuthIssuer": "https://idp.example/",
    "AuthAudience": "netbird",
    "AuthOidcConfigEndpoint": "https://idp.example/.well-known/openid-configuration",
}
# Logical ids of a stack deployed before the modes existed: an update with
# the defaults keeps every one of them.
DEFAULT_IDS = {
    "TokensTable", "UsersTable", "KeyCacheTable", "DeleteTokenFunction", "DeleteTokenFunctionRole",
    "DeleteTokenFunctionDeleteTokenPermission", "DeleteTokenFunctionPreflightPermission", "HttpApi",
    "HttpApiApiGatewayDefaultStage", "DeleteTokenLogGroup", "ApiAccessLogGroup", "ErrorsAlarm", "Api5xxAlarm",
    "ThrottlesAlarm",
}
ALIAS = "DeleteTokenFunctionAliaslive"


class NoManagedPolicies:
    """The template names no managed policy: nothing to look up in IAM."""

    def load(self):
        return {}


@pytest.fixture(scope="module")
def cloudformation():
    """The template as `sam deploy` uploads it."""
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    sam = yaml_parse(TEMPLATE.read_text())
    # sam build/package put the built code in S3; the transform wants an S3 URI.
    sam["Resources"]["DeleteTokenFunction"]["Properties"]["CodeUri"] = "s3://artifacts/delete-token.zip"
    return sam


def render(sam, **params):
    """The stack `params` make: the SAM transform with those parameters (as
    CloudFormation applies it), then parameters and conditions evaluated."""
    params = {**REQUIRED, **params}
    transformed = transform(copy.deepcopy(sam), params, NoManagedPolicies())
    return Template(transformed).create_stack(params, region=REGION)


def table_arn(account, name, index=None):
    arn = f"arn:aws:dynamodb:{REGION}:{account}:table/{name}"
    return f"{arn}/index/{index}" if index else arn


def statements(stack):
    """The role's statements by Sid (cloud-radar leaves an AWS::NoValue in a
    list as "", which CloudFormation removes)."""
    policies = stack.get_resource("DeleteTokenFunctionRole")["Properties"]["Policies"]
    return {s["Sid"]: s for p in policies for s in p["PolicyDocument"]["Statement"] if s != ""}


def variables(stack):
    return stack.get_resource("DeleteTokenFunction")["Properties"]["Environment"]["Variables"]


def test_defaults_keep_every_logical_id_and_create_everything(cloudformation):
    stack = render(cloudformation)
    assert DEFAULT_IDS <= set(stack.data["Resources"])
    assert not {"ExistingApiIntegration", "ExistingApiDeleteRoute", "ExistingApiPreflightRoute"} & set(
        stack.data["Resources"]
    )
    env = variables(stack)
    assert (env["TOKENS_TABLE"], env["USERS_TABLE"], env["KEY_CACHE_TABLE"]) == (
        "TokensTable", "UsersTable", "KeyCacheTable",
    )
    for table in ("TokensTable", "UsersTable"):
        resource = stack.data["Resources"][table]
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
    body = stack.get_resource("HttpApi")["Properties"]["Body"]
    route = body["paths"]["/api/users/{userId}/tokens/{tokenId}"]
    for method in ("delete", "options"):
        integration = route[method]["x-amazon-apigateway-integration"]
        assert (integration["type"], integration["payloadFormatVersion"]) == ("aws_proxy", "2.0")
        assert "DeleteTokenFunction" in str(integration["uri"])
    for name, method in (("DeleteTokenFunctionDeleteTokenPermission", "DELETE"),
                         ("DeleteTokenFunctionPreflightPermission", "OPTIONS")):
        arn = stack.get_resource(name)["Properties"]["SourceArn"]
        assert arn.endswith(f":HttpApi/*/{method}/api/users/*/tokens/*"), arn
    assert "HttpApi" in stack.data["Outputs"]["ApiUrl"]["Value"]
    for method in ("delete", "options"):
        assert route[method]["x-amazon-apigateway-integration"]["uri"].endswith(f"/functions/{ALIAS}/invocations")


@pytest.mark.parametrize(
    "tokens,users,keys", [("nb-tokens-prod", "nb-users-prod", "nb-keys-prod"), ("tok", "usr", "")]
)
def test_existing_tables_are_used_and_never_created(cloudformation, tokens, users, keys):
    stack = render(cloudformation, TokensTableName=tokens, UsersTableName=users, KeyCacheTableName=keys)
    resources = set(stack.data["Resources"])
    assert not {"TokensTable", "UsersTable"} & resources
    assert ("KeyCacheTable" in resources) == (keys == "")
    env = variables(stack)
    assert (env["TOKENS_TABLE"], env["USERS_TABLE"]) == (tokens, users)
    assert env["KEY_CACHE_TABLE"] == (keys or "KeyCacheTable")
    account = stack.get_resource("DeleteTokenFunctionDeleteTokenPermission")["Properties"]["SourceArn"].split(":")[4]
    policy = statements(stack)
    assert policy["DeleteTokens"]["Resource"] == table_arn(account, tokens)
    assert policy["MarkTokensUsed"]["Resource"] == table_arn(account, tokens)
    assert policy["FindTokensByHash"]["Resource"] == table_arn(account, tokens, "hashedToken-index")
    assert policy["ReadUsers"]["Resource"] == table_arn(account, users)
    if keys:
        assert policy["ShareProviderKeys"]["Resource"] == table_arn(account, keys)
    outputs = stack.data["Outputs"]
    assert (outputs["TokensTableName"]["Value"], outputs["UsersTableName"]["Value"]) == (tokens, users)


@pytest.mark.parametrize("api_id", ["a1b2c3d4e5", "zz9yy8xx7w"])
def test_an_existing_api_gets_the_two_routes(cloudformation, api_id):
    stack = render(cloudformation, HttpApiId=api_id)
    resources = set(stack.data["Resources"])
    assert not {"HttpApi", "HttpApiApiGatewayDefaultStage", "ApiAccessLogGroup", "Api5xxAlarm"} & resources
    integration = stack.get_resource("ExistingApiIntegration")["Properties"]
    assert integration["ApiId"] == api_id
    assert (integration["IntegrationType"], integration["PayloadFormatVersion"]) == ("AWS_PROXY", "2.0")
    assert integration["IntegrationUri"] == ALIAS, "the API invokes the alias"
    routes = {
        stack.get_resource(name)["Properties"]["RouteKey"]: stack.get_resource(name)["Properties"]
        for name in ("ExistingApiDeleteRoute", "ExistingApiPreflightRoute")
    }
    assert set(routes) == {
        "DELETE /api/users/{userId}/tokens/{tokenId}", "OPTIONS /api/users/{userId}/tokens/{tokenId}",
    }
    for route in routes.values():
        assert route["ApiId"] == api_id
        assert route["Target"] == "integrations/ExistingApiIntegration"
    for name, method in (("DeleteTokenFunctionDeleteTokenPermission", "DELETE"),
                         ("DeleteTokenFunctionPreflightPermission", "OPTIONS")):
        assert stack.get_resource(name)["Properties"]["FunctionName"] == ALIAS, "the permission names the alias"
        arn = stack.get_resource(name)["Properties"]["SourceArn"]
        assert arn.startswith(f"arn:aws:execute-api:{REGION}:")
        assert arn.endswith(f":{api_id}/*/{method}/api/users/*/tokens/*")
    assert stack.data["Outputs"]["ApiUrl"]["Value"] == f"https://{api_id}.execute-api.{REGION}.amazonaws.com"
    assert "AccessLogGroupName" not in stack.data["Outputs"]


def test_existing_tables_and_api_together(cloudformation):
    stack = render(cloudformation, TokensTableName="tok", UsersTableName="usr", KeyCacheTableName="kcache",
                   HttpApiId="q7w8e9r0t1")
    resources = set(stack.data["Resources"])
    assert not {"TokensTable", "UsersTable", "KeyCacheTable", "HttpApi"} & resources
    assert {"DeleteTokenFunction", "ExistingApiIntegration", "ExistingApiDeleteRoute", "ExistingApiPreflightRoute",
            "DeleteTokenLogGroup", "ErrorsAlarm", "ThrottlesAlarm"} <= resources
    env = variables(stack)
    assert (env["TOKENS_TABLE"], env["USERS_TABLE"], env["KEY_CACHE_TABLE"]) == ("tok", "usr", "kcache")


def test_the_template_is_publishable_as_an_application():
    metadata = yaml_parse(TEMPLATE.read_text())["Metadata"]["AWS::ServerlessRepo::Application"]
    for field in ("Name", "Description", "Author", "SpdxLicenseId", "LicenseUrl", "ReadmeUrl", "SemanticVersion"):
        assert metadata[field], field
    root = TEMPLATE.parent
    assert (root / metadata["LicenseUrl"]).is_file() and (root / metadata["ReadmeUrl"]).is_file()
    version = next(l for l in (root / "Cargo.toml").read_text().splitlines() if l.startswith("version"))
    assert metadata["SemanticVersion"] in version, "the application and the crate have one version"


@pytest.mark.parametrize("cap", ["7", "250"])
def test_max_concurrency_reserves_that_many_instances(cloudformation, cap):
    function = render(cloudformation, MaxConcurrency=cap).get_resource("DeleteTokenFunction")["Properties"]
    assert int(function["ReservedConcurrentExecutions"]) == int(cap)
    uncapped = render(cloudformation).get_resource("DeleteTokenFunction")["Properties"]
    assert "ReservedConcurrentExecutions" not in uncapped, "0, the default, sets no cap"


def deployment_types():
    return yaml_parse(TEMPLATE.read_text())["Parameters"]["DeploymentType"]["AllowedValues"]


@pytest.mark.parametrize("deployment_type", deployment_types())
def test_every_deployment_type_publishes_behind_the_alias_and_rolls_back_on_the_functions_alarms(
    cloudformation, deployment_type
):
    stack = render(cloudformation, DeploymentType=deployment_type)
    alias = stack.get_resource(ALIAS)["Properties"]
    assert alias["Name"] == "live"
    group = stack.get_resource("DeleteTokenFunctionDeploymentGroup")["Properties"]
    assert group["DeploymentConfigName"] == f"CodeDeployDefault.Lambda{deployment_type}"
    assert {a["Name"] for a in group["AlarmConfiguration"]["Alarms"]} == {"ErrorsAlarm", "InvocationErrorsAlarm"}
    assert group["AlarmConfiguration"]["Enabled"] is True
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
    dimensions = {d["Name"]: d["Value"] for d in stack.get_resource("InvocationErrorsAlarm")["Properties"]["Dimensions"]}
    assert dimensions == {"FunctionName": "DeleteTokenFunction", "Resource": "DeleteTokenFunction:live"}


def test_inline_keys_need_no_key_cache_at_all(cloudformation):
    stack = render(cloudformation, AuthOidcConfigEndpoint="", AuthJwks='{"keys": []}', KeyCacheTableName="shared")
    assert not {"KeyCacheTable", "KeysStaleAlarm"} & set(stack.data["Resources"])
    assert variables(stack).get("KEY_CACHE_TABLE", "") == ""
    assert "ShareProviderKeys" not in statements(stack)
    assert "KeyCacheTableName" not in stack.data["Outputs"]


@pytest.mark.parametrize("params,leading_key", [
    ({}, "oidc https://idp.example/.well-known/openid-configuration https://idp.example/"),
    ({"AuthKeysLocation": "https://idp.example/keys"}, "jwks https://idp.example/keys"),
])
def test_the_function_may_read_and_write_only_its_own_key_sources_cache_item(cloudformation, params, leading_key):
    """The key is the one the function computes (its unit test holds the
    same two strings): the setting as written, with the issuer for
    discovery."""
    share = statements(render(cloudformation, **params))["ShareProviderKeys"]
    condition = share["Condition"]["ForAllValues:StringEquals"]
    assert condition["dynamodb:LeadingKeys"] == [leading_key]
    assert set(share["Action"]) == {"dynamodb:GetItem", "dynamodb:PutItem"}


@pytest.mark.parametrize("name,value", [
    ("TokensTableName", "*"),
    ("TokensTableName", "tokens*"),
    ("UsersTableName", "users/other"),
    ("KeyCacheTableName", "k"),
    ("HttpApiId", "not-an-id"),
    ("AuthIssuer", ""),
    ("AuthIssuer", "https://idp.example/ x"),
    ("AuthAudience", " , "),
    ("AuthKeysLocation", "http://idp.example/keys"),
    ("AuthOidcConfigEndpoint", "https://idp.example/ with space"),
    ("AuthJwks", "not json"),
    ("AuthUserIdClaim", ""),
    ("AuthJwtAllowGroups", " , "),
    ("RateLimitingRpm", "0"),
    ("RateLimitingRpm", "60001"),
    ("RateLimitingBurst", "0"),
    ("MaxConcurrency", "-1"),
    ("ThrottleRateLimit", "0"),
    ("KeysStaleAlarmHours", "24"),
    ("KeysStaleAlarmHours", "0"),
    ("AlarmTopicArn", "arn:aws:sns:eu-central-1:123:topic"),
    ("LogLevel", "VERBOSE"),
    ("DeploymentType", "Canary50Percent1Minute"),
])
def test_values_that_cannot_be_right_are_refused_before_anything_is_created(cloudformation, name, value):
    with pytest.raises(ValueError):
        render(cloudformation, **{name: value})


def test_values_that_can_be_right_are_taken(cloudformation):
    stack = render(cloudformation, TokensTableName="NetBird.tokens_v2", HttpApiId="a1b2c3d4e5",
                   AuthAudience="netbird, cli", AuthJwtGroupsClaim="groups", AuthJwtAllowGroups="admins, ops",
                   AlarmTopicArn="arn:aws:sns:eu-central-1:123456789012:ops-alerts", LogLevel="WARN",
                   MaxConcurrency="0", RateLimitingRpm="60000")
    assert variables(stack)["AUTH_JWT_ALLOW_GROUPS"] == "admins, ops"
    assert stack.get_resource("DeleteTokenFunction")["Properties"]["LoggingConfig"]["ApplicationLogLevel"] == "WARN"


def rule_holds(expression, params):
    """A Rules assertion (Fn::Or, Fn::And, Fn::Not, Fn::Equals, Ref) on
    `params` (defaults applied), as CloudFormation evaluates it."""
    ((function, value),) = expression.items()
    if function == "Ref":
        return params[value]
    args = [rule_holds(a, params) if isinstance(a, dict) else a for a in value]
    if function == "Fn::Or":
        return any(args)
    if function == "Fn::And":
        return all(args)
    if function == "Fn::Not":
        return not args[0]
    if function == "Fn::Equals":
        return args[0] == args[1]
    raise ValueError(f"a function the rules do not use: {function}")


def rules_refusing(params):
    template = yaml_parse(TEMPLATE.read_text())
    values = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
    values.update(REQUIRED, **params)
    refused = []
    for rule_name, rule in template["Rules"].items():
        if "RuleCondition" in rule and not rule_holds(rule["RuleCondition"], values):
            continue
        refused += [rule_name for a in rule["Assertions"] if not rule_holds(a["Assert"], values)]
    return refused


def test_rules_refuse_what_no_single_parameter_can():
    assert rules_refusing({}) == []
    assert rules_refusing({"AuthOidcConfigEndpoint": ""}) == ["OneKeySource"]
    assert rules_refusing({"AuthJwks": "{}", "AuthOidcConfigEndpoint": ""}) == []
    assert rules_refusing({"AuthJwtAllowGroups": "admins"}) == ["AllowedGroupsNeedTheirClaim"]
    assert rules_refusing({"AuthJwtAllowGroups": "admins", "AuthJwtGroupsClaim": "groups"}) == []


def test_the_dashboard_and_the_saved_queries_read_this_functions_logs_and_series(cloudformation):
    """Their names and what each shows are the operations page's, which
    tests/documents.rs holds to this template; here, that each reads this
    stack's own log group and metric series."""
    stack = render(cloudformation)
    body = json.loads(stack.get_resource("Dashboard")["Properties"]["DashboardBody"])
    for widget in body["widgets"]:
        if widget["type"] == "log":
            assert widget["properties"]["query"].startswith("SOURCE 'DeleteTokenLogGroup'")
        for metric in widget["properties"].get("metrics", []):
            if metric[0] == "NetBird/DeleteToken":
                assert metric[2:4] == ["FunctionName", "DeleteTokenFunction"], metric
    for name, resource in stack.data["Resources"].items():
        if resource["Type"] == "AWS::Logs::QueryDefinition":
            assert stack.get_resource(name)["Properties"]["LogGroupNames"] == ["DeleteTokenLogGroup"]
    assert int(render(cloudformation, KeysStaleAlarmHours="2").get_resource("KeysStaleAlarm")["Properties"]["Threshold"]) == 2


def test_each_alarm_reads_only_its_own_functions_series(cloudformation):
    """Two stacks in one account and region: the function writes its name as
    the metrics' dimension, and every alarm on them names it."""
    stack = render(cloudformation)
    for name in ("ErrorsAlarm", "KeysStaleAlarm"):
        alarm = stack.get_resource(name)["Properties"]
        metrics = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m] or [alarm]
        for metric in metrics:
            assert metric["Namespace"] == "NetBird/DeleteToken"
            assert metric["Dimensions"] == [{"Name": "FunctionName", "Value": "DeleteTokenFunction"}], name


@pytest.mark.parametrize("tracing", ["true", "false"])
def test_the_role_writes_only_its_own_log_group_and_traces_only_when_tracing(cloudformation, tracing):
    stack = render(cloudformation, EnableTracing=tracing)
    role = stack.get_resource("DeleteTokenFunctionRole")["Properties"]
    assert "ManagedPolicyArns" not in role, "no managed policy: nothing beyond the statements below"
    function = stack.get_resource("DeleteTokenFunction")["Properties"]
    assert function["Role"] == "DeleteTokenFunctionRole.Arn"
    assert function["LoggingConfig"]["LogGroup"] == "DeleteTokenLogGroup"
    policy = statements(stack)
    assert set(policy["WriteOwnLog"]["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert policy["WriteOwnLog"]["Resource"] == "DeleteTokenLogGroup.Arn", "the group's streams, no other group"
    assert ("WriteTraces" in policy) == (tracing == "true")
    actions = [a for s in policy.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert {a.split(":")[0] for a in actions} <= {"logs", "xray", "dynamodb"}
    assert "logs:CreateLogGroup" not in actions


# What CloudFormation replaces an AWS::DynamoDB::Table for when it changes
# (the rest it updates in place).
REPLACING = ("TableName", "KeySchema", "LocalSecondaryIndexes")


def test_an_update_from_0_2_0_replaces_no_table(cloudformation):
    released = yaml_parse((Path(__file__).parent / "tables-0.2.0.yaml").read_text())
    resources = cloudformation["Resources"]
    for logical_id, before in released.items():
        now = resources[logical_id]
        assert now["Type"] == before["Type"]
        for name in REPLACING:
            assert now["Properties"].get(name) == before["Properties"].get(name), (logical_id, name)
        keys = {k["AttributeName"] for k in now["Properties"]["KeySchema"]}
        types = lambda table: {d["AttributeName"]: d["AttributeType"] for d in table["Properties"]["AttributeDefinitions"]}
        assert {k: types(now)[k] for k in keys} == {k: types(before)[k] for k in keys}, logical_id
        assert (now["DeletionPolicy"], now["UpdateReplacePolicy"]) == (before["DeletionPolicy"], before["UpdateReplacePolicy"])
    # And with the defaults every one of them is still there.
    assert set(released) <= set(render(cloudformation).data["Resources"])
