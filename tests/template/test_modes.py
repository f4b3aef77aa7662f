"""template.yaml rendered in each of its modes (new or existing tables, new
or existing HTTP API), with the SAM transform applied (samtranslator, as
`sam deploy` applies it) and parameters and conditions evaluated
(cloud-radar), without an AWS account: which resources exist, the tables
the function gets, the ARNs its policy names, where the routes go."""

import copy
import os
from pathlib import Path

import pytest
from cloud_radar.cf.unit import Template
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
REGION = "eu-central-1"
REQUIRED = {"AuthIssuer": "https://idp.example/", "AuthAudience": "netbird"}
# Logical ids of a stack deployed before the modes existed: an update with
# the defaults keeps every one of them.
DEFAULT_IDS = {
    "TokensTable", "UsersTable", "KeyCacheTable", "DeleteTokenFunction", "DeleteTokenFunctionRole",
    "DeleteTokenFunctionDeleteTokenPermission", "DeleteTokenFunctionPreflightPermission", "HttpApi",
    "HttpApiApiGatewayDefaultStage", "DeleteTokenLogGroup", "ApiAccessLogGroup", "ErrorsAlarm", "Api5xxAlarm",
    "ThrottlesAlarm",
}


class NoManagedPolicies:
    """The template names no managed policy: nothing to look up in IAM."""

    def load(self):
        return {}


@pytest.fixture(scope="module")
def cloudformation():
    """The template as CloudFormation gets it after the SAM transform."""
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    sam = yaml_parse(TEMPLATE.read_text())
    # sam build/package put the built code in S3; the transform wants an S3 URI.
    sam["Resources"]["DeleteTokenFunction"]["Properties"]["CodeUri"] = "s3://artifacts/delete-token.zip"
    return transform(sam, {}, NoManagedPolicies())


def render(cloudformation, **params):
    return Template(copy.deepcopy(cloudformation)).create_stack({**REQUIRED, **params}, region=REGION)


def table_arn(account, name, index=None):
    arn = f"arn:aws:dynamodb:{REGION}:{account}:table/{name}"
    return f"{arn}/index/{index}" if index else arn


def statements(stack):
    policies = stack.get_resource("DeleteTokenFunctionRole")["Properties"]["Policies"]
    return {s["Sid"]: s for p in policies for s in p["PolicyDocument"]["Statement"]}


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


@pytest.mark.parametrize("tokens,users,keys", [("nb-tokens-prod", "nb-users-prod", "nb-keys-prod"), ("t", "u", "")])
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
    assert "DeleteTokenFunction" in str(integration["IntegrationUri"])
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
        arn = stack.get_resource(name)["Properties"]["SourceArn"]
        assert arn.startswith(f"arn:aws:execute-api:{REGION}:")
        assert arn.endswith(f":{api_id}/*/{method}/api/users/*/tokens/*")
    assert stack.data["Outputs"]["ApiUrl"]["Value"] == f"https://{api_id}.execute-api.{REGION}.amazonaws.com"
    assert "AccessLogGroupName" not in stack.data["Outputs"]


def test_existing_tables_and_api_together(cloudformation):
    stack = render(cloudformation, TokensTableName="tok", UsersTableName="usr", KeyCacheTableName="kc",
                   HttpApiId="q7w8e9r0t1")
    resources = set(stack.data["Resources"])
    assert not {"TokensTable", "UsersTable", "KeyCacheTable", "HttpApi"} & resources
    assert {"DeleteTokenFunction", "ExistingApiIntegration", "ExistingApiDeleteRoute", "ExistingApiPreflightRoute",
            "DeleteTokenLogGroup", "ErrorsAlarm", "ThrottlesAlarm"} <= resources
    env = variables(stack)
    assert (env["TOKENS_TABLE"], env["USERS_TABLE"], env["KEY_CACHE_TABLE"]) == ("tok", "usr", "kc")


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
