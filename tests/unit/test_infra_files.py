"""The deployment files: what a team deploying docsrag relies on without reading them line by line.

template.yaml (AWS SAM), localstack-compose.yml, the sample events in events/, the Lambda
dependency locks and the helper scripts. `sam validate --lint` and `sam build` themselves run in
infra/scripts/sam-check.sh (they need aws-sam-cli, which lives outside the project's venv).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
import yaml
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventV2Model,
    S3Model,
    S3SqsEventNotificationModel,
    SqsModel,
)

from docsrag.config import Settings

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
LAYERS = ROOT / "functions" / "layers"


# --- loading ---------------------------------------------------------------------------------


class CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short-form tags (`!Ref X` -> {"Ref": "X"})."""


def _construct_intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template() -> dict[str, Any]:
    with (ROOT / "template.yaml").open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=CloudFormationLoader)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with (ROOT / "localstack-compose.yml").open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == kind}


def function_env(template: dict[str, Any], name: str) -> dict[str, Any]:
    env = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    props = template["Resources"][name]["Properties"]
    env.update(props.get("Environment", {}).get("Variables", {}))
    return env


def function_setting(template: dict[str, Any], name: str, key: str) -> Any:
    props = template["Resources"][name]["Properties"]
    return props.get(key, template["Globals"]["Function"].get(key))


def inline_statements(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in template["Resources"][name]["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            statements.extend(policy["Statement"])
    return statements


def sam_policy_templates(template: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for policy in template["Resources"][name]["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" not in policy:
            found.update(policy)
    return found


def references(node: Any) -> set[str]:
    """Logical ids a template fragment refers to through Ref, GetAtt or Sub."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
                if not isinstance(value, str):
                    found |= references(value[1])
            elif key == "DependsOn":
                found |= set(value if isinstance(value, list) else [value])
            else:
                found |= references(value)
    return found


PSEUDO = {
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::Region": "eu-central-1",
    "AWS::StackName": "Docsrag-Prod",
    "AWS::StackId": (
        "arn:aws:cloudformation:eu-central-1:123456789012:stack/Docsrag-Prod/"
        "51af3dc0-da77-11e4-872e-1234567db123"
    ),
}


def evaluate(node: Any) -> Any:
    """Evaluate the intrinsic functions used for names (Ref to pseudo parameters, Join, Select,
    Split, Sub) the way CloudFormation would for one example stack."""
    if isinstance(node, str | int):
        return node
    if isinstance(node, list):
        return [evaluate(item) for item in node]
    ((fn, arg),) = node.items()
    if fn == "Ref":
        return PSEUDO[arg]
    if fn == "Fn::Join":
        separator, items = arg
        return separator.join(evaluate(items))
    if fn == "Fn::Select":
        index, items = arg
        return evaluate(items)[int(index)]
    if fn == "Fn::Split":
        separator, text = arg
        return evaluate(text).split(separator)
    if fn == "Fn::Sub" and isinstance(arg, str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: PSEUDO[m.group(1)], arg)
    raise AssertionError(f"unexpected intrinsic {fn}")


# --- template.yaml: packaging ------------------------------------------------------------------


def test_every_function_runs_python312_from_a_code_uri_that_holds_the_docsrag_package(
    template: dict[str, Any],
) -> None:
    functions = resources_of_type(template, "AWS::Serverless::Function")
    assert set(functions) == {"ChatFunction", "ChatStreamFunction", "IngestFunction"}
    assert template["Globals"]["Function"]["Runtime"] == "python3.12"
    assert template["Globals"]["Function"]["Tracing"] == "Active"
    handlers = {name: res["Properties"]["Handler"] for name, res in functions.items()}
    assert handlers == {
        "ChatFunction": "chat.app.handler",
        # a program the Lambda Web Adapter's wrapper runs (exec "$LAMBDA_TASK_ROOT/$_HANDLER")
        "ChatStreamFunction": "chat/run.sh",
        "IngestFunction": "ingest.app.handler",
    }
    for name in functions:
        code_uri = ROOT / function_setting(template, name, "CodeUri")
        assert (code_uri / "docsrag" / "__init__.py").is_file(), f"{name} would not ship docsrag"
    run_sh = ROOT / function_setting(template, "ChatStreamFunction", "CodeUri") / "chat/run.sh"
    assert os.access(run_sh, os.X_OK), "sam build and sam deploy keep the execute bit"
    script = run_sh.read_text(encoding="utf-8")
    assert script.startswith("#!/bin/bash\n")
    assert "exec python3 -m uvicorn chat.stream:app" in script
    assert '--host 127.0.0.1 --port "${AWS_LWA_PORT' in script
    assert (code_uri / "chat" / "stream.py").is_file()


def test_each_function_gets_its_own_pinned_dependency_layer_for_its_architecture(
    template: dict[str, Any],
) -> None:
    architectures = template["Globals"]["Function"]["Architectures"]
    for function, layer in (
        ("ChatFunction", "ChatDependenciesLayer"),
        ("IngestFunction", "IngestDependenciesLayer"),
    ):
        assert template["Resources"][function]["Properties"]["Layers"] == [{"Ref": layer}]
        res = template["Resources"][layer]
        assert res["Metadata"]["BuildMethod"] == "python3.12"
        assert [res["Metadata"]["BuildArchitecture"]] == architectures
        assert res["Properties"]["CompatibleArchitectures"] == architectures
        assert (ROOT / res["Properties"]["ContentUri"] / "requirements.txt").is_file()


def read_pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"{path.name}: {line!r} is not pinned with =="
        pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


@pytest.mark.parametrize("layer", ["chat", "ingest"])
def test_dependency_locks_pin_every_top_level_package_at_the_version_the_tests_run(
    layer: str,
) -> None:
    # GIVEN the hand-edited top-level list and the generated full lock
    top = read_pins(LAYERS / layer / "requirements.in")
    lock = read_pins(LAYERS / layer / "requirements.txt")
    # THEN the lock contains each top-level package at the same version...
    for name, version in top.items():
        assert lock.get(name) == version, f"{layer} lock: {name} should be {version}; relock"
        # ...which is the version installed here, so Lambda runs what the test suite ran
        assert metadata.version(name) == version, f"{name}: venv has {metadata.version(name)}"
    # AND a layer's botocore (shadowing the runtime's) comes with the matching boto3
    if "botocore" in lock:
        assert lock.get("boto3") == lock["botocore"]


def test_ingest_layer_leaves_out_the_web_stack_and_no_layer_ships_dev_tools() -> None:
    chat_top = read_pins(LAYERS / "chat" / "requirements.in")
    ingest_top = read_pins(LAYERS / "ingest" / "requirements.in")
    ingest_lock = read_pins(LAYERS / "ingest" / "requirements.txt")
    web_stack = {"fastapi", "mangum", "openai-agents", "openai-chatkit", "starlette", "uvicorn"}
    assert web_stack.isdisjoint(ingest_lock)
    assert {"fastapi", "mangum", "openai-agents", "openai-chatkit"} <= set(chat_top)
    # The parsers (and tenacity, which nothing imports) are ingest's alone: the chat function never
    # loads docsrag.ingest or docsrag.parsing, and its layer has a size budget (sam-check.sh).
    ingest_only = {"selectolax", "python-frontmatter", "pyyaml", "tenacity"}
    assert set(ingest_top) - ingest_only <= set(chat_top)
    assert ingest_only.isdisjoint(read_pins(LAYERS / "chat" / "requirements.txt"))
    dev_tools = {"pytest", "moto", "ruff", "mypy", "typer", "rich", "hypothesis"}
    assert "uvicorn" in chat_top  # the streaming function's server (functions/chat/run.sh)
    assert dev_tools.isdisjoint(chat_top) and dev_tools.isdisjoint(ingest_top)


def test_chat_code_never_imports_the_ingest_only_parsers_at_module_level() -> None:
    # GIVEN the modules the chat handler loads: everything in docsrag but the ingest side
    chat_side = [ROOT / "functions" / "chat" / "app.py"] + [
        path
        for path in sorted((ROOT / "functions" / "docsrag").rglob("*.py"))
        if path.parent.name != "parsing"
        and path.name not in {"ingest.py", "s3site.py", "cli.py", "__main__.py"}
    ]
    # THEN none imports a package the chat layer leaves out, nor the ingest modules, at top level
    banned = re.compile(
        r"^(?:import|from) (?:selectolax|frontmatter|yaml|tenacity|docsrag\.parsing|docsrag\.ingest"
        r"|docsrag\.s3site)\b",
        re.MULTILINE,
    )
    for path in chat_side:
        match = banned.search(path.read_text(encoding="utf-8"))
        assert match is None, f"{path.relative_to(ROOT)}: {match and match.group(0)}"


def sam_check_setting(name: str) -> str:
    script = (ROOT / "infra/scripts/sam-check.sh").read_text(encoding="utf-8")
    match = re.search(rf"^{name}=(\S+)", script, re.MULTILINE)
    assert match, f"sam-check.sh sets no {name}"
    return match.group(1)


def test_sam_check_enforces_a_size_budget_under_lambdas_limit() -> None:
    budget = int(sam_check_setting("SIZE_BUDGET"))
    assert budget <= 220_000_000 < int(sam_check_setting("LAMBDA_UNZIPPED_LIMIT"))


def test_the_chat_layers_botocore_keeps_every_service_the_chat_code_makes_a_client_for() -> None:
    # GIVEN the services whose botocore models sam-check.sh keeps in the chat layer
    script = (ROOT / "infra/scripts/sam-check.sh").read_text(encoding="utf-8")
    listed = re.search(r"^CHAT_BOTOCORE_SERVICES=\(([^)]*)\)", script, re.MULTILINE)
    assert listed, "sam-check.sh sets no CHAT_BOTOCORE_SERVICES=(...)"
    kept = set(listed.group(1).split())
    assert {"dynamodb", "secretsmanager", "ssm", "xray"} <= kept
    # THEN every client the chat side of the code creates by name is among them
    sources = [
        ROOT / "functions" / "chat" / "app.py",
        *(ROOT / "functions" / "docsrag").rglob("*.py"),
    ]
    for path in sources:
        if path.name in {"s3site.py", "cli.py"}:
            continue  # ingest and local tooling
        for service in re.findall(r"\bclient\(\s*[\"']([a-z0-9-]+)[\"']", path.read_text("utf-8")):
            assert service in kept, f"{path.relative_to(ROOT)} makes a {service} client"


# --- template.yaml: parameters, settings and secrets ------------------------------------------


SECRET_PARAMETERS = {"OpenRouterApiKeySecretArn", "QdrantApiKeySecretArn", "VisitorTokenSecretArn"}
# Secrets a stack may go without: the parameter defaults to "" and a condition leaves them out.
OPTIONAL_SECRET_PARAMETERS = {"McpBearerTokenSecretArn": "HasMcpBearerToken"}


def secret_parameter(value: Any) -> str | None:
    """The secret ARN parameter a value names: `!Ref P`, or `!If [HasP, !Ref P, !Ref NoValue]`
    for an optional secret; None for anything else."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return value["Ref"] if value["Ref"] in SECRET_PARAMETERS else None
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        condition, then, otherwise = value["Fn::If"]
        name = then.get("Ref") if isinstance(then, dict) else None
        if OPTIONAL_SECRET_PARAMETERS.get(name) == condition and otherwise == {
            "Ref": "AWS::NoValue"
        }:
            return str(name)
    return None


def test_secret_parameters_are_no_echo_arns_without_defaults(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    for name in SECRET_PARAMETERS:
        assert params[name]["NoEcho"] is True
        assert "Default" not in params[name]
        pattern = params[name]["AllowedPattern"]
        arn = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:docsrag/api-key-AbC123"
        assert re.fullmatch(pattern, arn)
        assert not re.fullmatch(pattern, "sk-or-v1-0123456789abcdef"), "a key pasted as the ARN"


def test_the_optional_mcp_token_secret_is_a_no_echo_arn_or_empty(
    template: dict[str, Any],
) -> None:
    for name, condition in OPTIONAL_SECRET_PARAMETERS.items():
        param = template["Parameters"][name]
        assert param["NoEcho"] is True
        assert param["Default"] == ""
        pattern = param["AllowedPattern"]
        assert re.fullmatch(pattern, "")
        arn = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:docsrag/mcp-token-AbC123"
        assert re.fullmatch(pattern, arn)
        assert not re.fullmatch(pattern, "mcp-bearer-token-pasted-as-the-arn")
        assert template["Conditions"][condition] == {
            "Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]
        }


FUNCTIONS = ("ChatFunction", "ChatStreamFunction", "IngestFunction")


def test_every_environment_variable_is_a_setting_or_names_the_secret_of_one(
    template: dict[str, Any],
) -> None:
    fields = set(Settings.model_fields)
    for function in FUNCTIONS:
        for variable, value in function_env(template, function).items():
            if variable.startswith(("POWERTOOLS_", "AWS_LWA_")) or variable in {
                "AWS_LAMBDA_EXEC_WRAPPER"  # the Lambda Web Adapter's
            }:
                continue
            if variable.endswith("_SECRET"):
                # X_SECRET names the Secrets Manager secret holding setting X; never the value
                assert variable.removesuffix("_SECRET").lower() in fields, variable
                assert secret_parameter(value) is not None, variable
                continue
            assert variable.lower() in fields, f"{function}: {variable} is no setting"
            assert not variable.lower().endswith(("api_key", "keys")), f"{variable} is a secret"


def test_each_function_may_read_exactly_the_secrets_it_is_given(template: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        given = {
            secret_parameter(value)
            for variable, value in function_env(template, function).items()
            if variable.endswith("_SECRET")
        }
        readable = {
            secret_parameter(resource)
            for statement in inline_statements(template, function)
            if statement["Action"] == "secretsmanager:GetSecretValue"
            for resource in statement["Resource"]
        }
        assert None not in given and None not in readable
        assert readable == given
    assert "VisitorTokenSecretArn" not in {
        value.get("Ref")
        for value in function_env(template, "IngestFunction").values()
        if isinstance(value, dict)
    }


def test_inline_policies_name_their_resources(template: dict[str, Any]) -> None:
    allows = [
        statement for function in FUNCTIONS for statement in inline_statements(template, function)
    ]
    allows += [
        statement
        for policy in resources_of_type(template, "AWS::SQS::QueuePolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert allows
    for statement in allows:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"]
        for resource in resources if isinstance(resources, list) else [resources]:
            assert resource != "*" and "*" not in str(resource), statement


def test_storage_permissions_are_split_by_function(template: dict[str, Any]) -> None:
    chat = sam_policy_templates(template, "ChatFunction")
    ingest = sam_policy_templates(template, "IngestFunction")
    assert chat == {"DynamoDBCrudPolicy": {"TableName": {"Ref": "ThreadsTable"}}}
    # the streaming function serves /chatkit and /session too: same threads, same rate limits
    assert sam_policy_templates(template, "ChatStreamFunction") == chat
    assert function_env(template, "ChatStreamFunction")["THREADS_TABLE"] == {"Ref": "ThreadsTable"}
    # S3ReadPolicy = GetObject + ListBucket (reconcile lists the bucket); no write access
    assert ingest == {"S3ReadPolicy": {"BucketName": {"Ref": "DocsBucket"}}}
    assert function_env(template, "ChatFunction")["THREADS_TABLE"] == {"Ref": "ThreadsTable"}
    assert "THREADS_TABLE" not in function_env(template, "IngestFunction")


# --- template.yaml: chat API -------------------------------------------------------------------


def test_cors_is_an_allow_list_of_origins_never_a_wildcard(template: dict[str, Any]) -> None:
    cors = template["Resources"]["ChatApi"]["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == {"Ref": "AllowedOrigins"}
    assert set(cors["AllowMethods"]) == {"GET", "POST", "OPTIONS"}
    assert {"content-type", "authorization", "x-visitor-token"} <= set(cors["AllowHeaders"])
    # the widget tells the chat function which docs page (version, locale) the visitor reads
    assert "x-docs-page-url" in cors["AllowHeaders"]
    origins = template["Parameters"]["AllowedOrigins"]
    assert origins["Type"] == "CommaDelimitedList"
    assert "Default" not in origins
    pattern = origins["AllowedPattern"]
    for good in ("https://docs.example.org", "http://localhost:3000"):
        assert re.fullmatch(pattern, good)
    for bad in ("*", "https://*.example.org", "https://docs.example.org/", "docs.example.org"):
        assert not re.fullmatch(pattern, bad), bad
    chat_env = function_env(template, "ChatFunction")
    assert chat_env["CORS_ORIGINS"] == {"Fn::Join": [",", {"Ref": "AllowedOrigins"}]}
    assert chat_env["CORS_VIA_GATEWAY"] == "true"


def test_widget_sends_the_current_page_url_with_every_chatkit_request(
    template: dict[str, Any],
) -> None:
    source = (ROOT / "infra/docusaurus/src/DocsChat.tsx").read_text(encoding="utf-8")
    header = re.search(r"PAGE_URL_HEADER = '([^']+)'", source)
    assert header is not None and header.group(1) == "x-docs-page-url"
    cors = template["Resources"]["ChatApi"]["Properties"]["CorsConfiguration"]
    assert header.group(1) in cors["AllowHeaders"]
    # read from window.location at request time (client-side navigation), set on each request...
    assert "new URL(window.location.href)" in source
    assert "headers.set(PAGE_URL_HEADER, currentPageUrl())" in source
    # ...by the fetch ChatKit is given, which still adds the visitor token
    assert "withPageUrl(createVisitorFetch(baseUrl))" in source
    assert re.search(r"api: \{url: `\$\{baseUrl\}/chatkit`, domainKey, fetch: chatFetch\}", source)


def test_chat_routes_are_throttled_and_served_by_the_snapstart_alias(
    template: dict[str, Any],
) -> None:
    props = template["Resources"]["ChatFunction"]["Properties"]
    routes = {
        (event["Properties"]["Method"], event["Properties"]["Path"])
        for event in props["Events"].values()
        if event["Type"] == "HttpApi"
    }
    assert routes == {
        ("POST", "/chat"),
        ("GET", "/health"),
        ("POST", "/chatkit"),
        ("POST", "/session"),
        ("GET", "/llms.txt"),
        ("GET", "/llms-full.txt"),
        ("POST", "/mcp"),
        ("GET", "/mcp"),  # answered 405 by the function, as Streamable HTTP asks
        ("DELETE", "/mcp"),
    }
    for event in props["Events"].values():
        assert event["Properties"]["ApiId"] == {"Ref": "ChatApi"}
    throttling = template["Resources"]["ChatApi"]["Properties"]["DefaultRouteSettings"]
    assert throttling == {
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
    }
    assert props["AutoPublishAlias"] == "live"
    assert props["SnapStart"] == {"ApplyOn": {"Ref": "SnapStartApplyOn"}}
    assert template["Parameters"]["SnapStartApplyOn"]["Default"] == "PublishedVersions"


def test_the_mcp_endpoint_is_routed_switchable_and_reachable_from_browsers(
    template: dict[str, Any],
) -> None:
    from docsrag.mcp_server import MCP_CORS_HEADERS, MCP_METHODS, MCP_PATH

    events = template["Resources"]["ChatFunction"]["Properties"]["Events"].values()
    mcp_methods = {
        event["Properties"]["Method"]
        for event in events
        if event["Type"] == "HttpApi" and event["Properties"]["Path"] == MCP_PATH
    }
    assert mcp_methods == set(MCP_METHODS)  # the methods the app routes (GET, DELETE: 405)
    enabled = template["Parameters"]["McpEnabled"]
    assert enabled["Default"] == "true" and enabled["AllowedValues"] == ["true", "false"]
    env = function_env(template, "ChatFunction")
    assert env["MCP_ENABLED"] == {"Ref": "McpEnabled"}
    assert env["MCP_BEARER_TOKEN_SECRET"] == {
        "Fn::If": [
            "HasMcpBearerToken",
            {"Ref": "McpBearerTokenSecretArn"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert "MCP_ENABLED" not in function_env(template, "IngestFunction")
    cors = template["Resources"]["ChatApi"]["Properties"]["CorsConfiguration"]
    assert set(MCP_CORS_HEADERS) <= set(cors["AllowHeaders"])
    assert "authorization" in cors["AllowHeaders"]
    assert template["Outputs"]["McpUrl"]["Value"]["Fn::Sub"].endswith("/mcp")
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = {name for group in groups for name in group["Parameters"]}
    assert {"McpEnabled", "McpBearerTokenSecretArn"} <= grouped


def test_the_llms_txt_routes_of_the_app_are_routed_to_the_chat_function(
    template: dict[str, Any],
) -> None:
    from docsrag.llms_routes import llms_txt_router

    def no_container() -> Any:
        raise AssertionError("routes are only listed here")

    served = {
        (method, route.path)
        for route in llms_txt_router(container=no_container).routes
        for method in getattr(route, "methods", ())
    }
    events = template["Resources"]["ChatFunction"]["Properties"]["Events"].values()
    routed = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events}
    assert served == {("GET", "/llms.txt"), ("GET", "/llms-full.txt")}
    assert served <= routed


def test_threads_table_matches_the_dynamodb_store(template: dict[str, Any]) -> None:
    props = template["Resources"]["ThreadsTable"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
    }
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


# --- template.yaml: streaming chat (Lambda Web Adapter, Function URL) ---------------------------


def _stream_constant(name: str) -> str:
    source = (ROOT / "functions/chat/stream.py").read_text(encoding="utf-8")
    match = re.search(rf'^{name} = "([^"]+)"', source, re.MULTILINE)
    assert match, f"chat/stream.py sets no {name}"
    return match.group(1)


def test_the_streaming_function_runs_the_app_under_the_web_adapter(
    template: dict[str, Any],
) -> None:
    props = template["Resources"]["ChatStreamFunction"]["Properties"]
    env = function_env(template, "ChatStreamFunction")
    # the adapter's layer, after the chat dependencies (uvicorn included), for this architecture
    chat_layer, adapter = props["Layers"]
    assert chat_layer == {"Ref": "ChatDependenciesLayer"}
    arn = adapter["Fn::Sub"]
    match = re.fullmatch(
        r"arn:aws:lambda:\$\{AWS::Region\}:753240598075:layer:LambdaAdapterLayer(X86|Arm64):(\d+)",
        arn,
    )
    assert match, arn
    assert {"X86": ["x86_64"], "Arm64": ["arm64"]}[match.group(1)] == template["Globals"][
        "Function"
    ]["Architectures"]
    assert int(match.group(2)) >= 30, "SnapStart hooks (AWS_LWA_SNAPSTART_*) need v1.1.0"
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_PORT"].isdigit()
    # the paths chat/stream.py answers for the adapter
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == _stream_constant("READY_PATH")
    assert env["AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH"] == _stream_constant("AFTER_RESTORE_PATH")
    # the snapshot is served: the URL targets the alias SAM publishes
    assert props["AutoPublishAlias"] == "live"
    assert props["SnapStart"] == {"ApplyOn": {"Ref": "SnapStartApplyOn"}}


def test_the_function_url_streams_and_answers_cors_alone(template: dict[str, Any]) -> None:
    url = template["Resources"]["ChatStreamFunction"]["Properties"]["FunctionUrlConfig"]
    assert url["AuthType"] == "NONE"  # browsers call it, like the HTTP API
    assert url["InvokeMode"] == "RESPONSE_STREAM"
    cors = url["Cors"]
    api_cors = template["Resources"]["ChatApi"]["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == api_cors["AllowOrigins"] == {"Ref": "AllowedOrigins"}
    assert cors["AllowCredentials"] is False
    assert set(cors["AllowMethods"]) == {"GET", "POST"}  # OPTIONS: the URL answers preflights
    # what the widget sends and reads (infra/docusaurus/src)
    assert {"content-type", "x-visitor-token", "x-docs-page-url"} <= set(cors["AllowHeaders"])
    assert set(cors["ExposeHeaders"]) == set(api_cors["ExposeHeaders"])
    # one Access-Control-Allow-Origin per response: the app's CORS middleware is off
    env = function_env(template, "ChatStreamFunction")
    assert env["CORS_VIA_GATEWAY"] == "true"
    assert env["CORS_ORIGINS"] == {"Fn::Join": [",", {"Ref": "AllowedOrigins"}]}
    # both URLs are printed
    assert template["Outputs"]["ChatStreamUrl"]["Value"] == {
        "Fn::GetAtt": ["ChatStreamFunctionUrl", "FunctionUrl"]
    }
    assert "ApiUrl" in template["Outputs"]


def test_the_streaming_function_has_a_cost_cap_that_can_be_lifted(
    template: dict[str, Any],
) -> None:
    props = template["Resources"]["ChatStreamFunction"]["Properties"]
    param = template["Parameters"]["StreamReservedConcurrency"]
    assert param["Type"] == "Number" and param["MinValue"] == 0 and param["Default"] > 0
    assert props["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "HasStreamConcurrencyCap",
            {"Ref": "StreamReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert template["Conditions"]["HasStreamConcurrencyCap"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "StreamReservedConcurrency"}, 0]}]
    }
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    assert "StreamReservedConcurrency" in {n for group in groups for n in group["Parameters"]}


@pytest.mark.parametrize(
    ("function", "limit"),
    [("ChatFunction", 30), ("ChatStreamFunction", 900)],  # the HTTP API's 30 s; Lambda's 15 min
)
def test_each_chat_function_has_a_request_budget_that_fits_its_timeout(
    template: dict[str, Any], function: str, limit: int
) -> None:
    env = function_env(template, function)
    timeout = function_setting(template, function, "Timeout")
    assert timeout <= limit
    assert int(env["FUNCTION_TIMEOUT_SECONDS"]) == timeout
    budget = float(env["REQUEST_TIME_BUDGET_SECONDS"])
    assert 0 < budget <= timeout - 5, "time left for the reply and the last writes"
    # a model call (with its retries) and the query embedding fit in the budget
    llm = float(env["LLM_TIMEOUT_SECONDS"]) * (1 + int(env["LLM_MAX_RETRIES"]))
    assert llm + float(env["EMBEDDING_TIMEOUT_SECONDS"]) <= budget
    # and the app, which refuses to start on a budget that does not fit, accepts them
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        request_time_budget_seconds=env["REQUEST_TIME_BUDGET_SECONDS"],
        function_timeout_seconds=env["FUNCTION_TIMEOUT_SECONDS"],
    )
    assert settings.request_time_budget_seconds == budget


# --- template.yaml: ingest path ----------------------------------------------------------------


def test_ingest_reports_partial_batch_failures_with_bounded_concurrency(
    template: dict[str, Any],
) -> None:
    events = template["Resources"]["IngestFunction"]["Properties"]["Events"]
    ((event,),) = [[e for e in events.values() if e["Type"] == "SQS"]]
    props = event["Properties"]
    assert props["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= props["BatchSize"] <= 10
    assert "MaximumBatchingWindowInSeconds" in props
    assert props["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "IngestConcurrency"}}
    assert template["Parameters"]["IngestConcurrency"]["MinValue"] >= 2


def test_queue_visibility_timeout_is_at_least_six_ingest_timeouts(template: dict[str, Any]) -> None:
    timeout = function_setting(template, "IngestFunction", "Timeout")
    visibility = template["Resources"]["IngestQueue"]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * timeout


def test_failing_documents_go_to_an_alarmed_dead_letter_queue(template: dict[str, Any]) -> None:
    redrive = template["Resources"]["IngestQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    assert 1 <= redrive["maxReceiveCount"] <= 10
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm").values()
    dlq_alarms = [
        alarm["Properties"]
        for alarm in alarms
        if alarm["Properties"]["Dimensions"]
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["IngestDeadLetterQueue", "QueueName"]}}]
    ]
    assert len(dlq_alarms) == 1
    alarm = dlq_alarms[0]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0
    assert alarm["AlarmActions"] == {
        "Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]
    }


_NOTIFY_TOPIC = {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}


def _alarm_on(
    template: dict[str, Any], namespace: str, metric: str, function: str | None = None
) -> dict[str, Any]:
    found = [
        res["Properties"]
        for res in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if res["Properties"]["Namespace"] == namespace
        and res["Properties"]["MetricName"] == metric
        and (
            function is None
            or {"Name": "FunctionName", "Value": {"Ref": function}}
            in res["Properties"].get("Dimensions", [])
        )
    ]
    assert len(found) == 1, f"one alarm on {namespace} {metric}, found {len(found)}"
    alarm: dict[str, Any] = found[0]
    return alarm


def _fires_on_any_occurrence_and_notifies_the_topic(alarm: dict[str, Any]) -> None:
    assert alarm["Statistic"] == "Sum"
    assert alarm["ComparisonOperator"] in ("GreaterThanThreshold", "GreaterThanOrEqualToThreshold")
    assert alarm["Threshold"] >= 0
    assert alarm["EvaluationPeriods"] >= 1
    assert alarm["Period"] in (60, 300)
    # No traffic (or a clean run) emits no data point: that is not a failure.
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == _NOTIFY_TOPIC
    assert alarm["AlarmDescription"].strip()


@pytest.mark.parametrize("function", ["ChatFunction", "ChatStreamFunction"])
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_chat_function_errors_and_throttles_are_alarmed(
    template: dict[str, Any], metric: str, function: str
) -> None:
    alarm = _alarm_on(template, "AWS/Lambda", metric, function)
    # FunctionName alone aggregates every version and alias (the "live" alias serves the API).
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    _fires_on_any_occurrence_and_notifies_the_topic(alarm)


def test_http_api_5xx_answers_are_alarmed(template: dict[str, Any]) -> None:
    assert template["Resources"]["ChatApi"]["Type"] == "AWS::Serverless::HttpApi"
    alarm = _alarm_on(template, "AWS/ApiGateway", "5xx")  # HTTP APIs: "5xx", not "5XXError"
    assert alarm["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "ChatApi"}}]
    _fires_on_any_occurrence_and_notifies_the_topic(alarm)


def test_reconcile_failures_are_alarmed_on_the_metric_the_ingest_function_emits(
    template: dict[str, Any],
) -> None:
    env = function_env(template, "IngestFunction")
    namespace = env["POWERTOOLS_METRICS_NAMESPACE"]
    alarm = _alarm_on(template, namespace, "PagesFailed")
    # Powertools Metrics add the service name as the one default dimension.
    assert alarm["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    _fires_on_any_occurrence_and_notifies_the_topic(alarm)


def test_reconcile_report_emits_pages_failed_in_the_alarmed_namespace_and_dimension(
    monkeypatch: pytest.MonkeyPatch, template: dict[str, Any]
) -> None:
    from aws_lambda_powertools import Metrics

    from docsrag import telemetry

    monkeypatch.setenv("METRICS_ENABLED", "1")
    alarm = _alarm_on(
        template,
        function_env(template, "IngestFunction")["POWERTOOLS_METRICS_NAMESPACE"],
        "PagesFailed",
    )
    # The function's environment, as Lambda gives it; telemetry builds `Metrics` from it.
    env = function_env(template, "IngestFunction")
    for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.setenv(name, env[name])
    metrics = Metrics(namespace=os.environ["POWERTOOLS_METRICS_NAMESPACE"])
    monkeypatch.setattr(telemetry, "metrics", metrics)
    telemetry.count("PagesFailed", 2)
    emf: dict[str, Any] = dict(metrics.serialize_metric_set())
    metrics.clear_metrics()
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == alarm["Namespace"]
    assert {m["Name"] for m in directive["Metrics"]} == {"PagesFailed"}
    assert directive["Dimensions"] == [[d["Name"] for d in alarm["Dimensions"]]]
    for dimension in alarm["Dimensions"]:
        assert emf[dimension["Name"]] == dimension["Value"]


def test_alarm_email_is_the_only_way_alarms_notify_anyone(template: dict[str, Any]) -> None:
    topic = template["Resources"]["AlarmTopic"]
    assert topic["Condition"] == "HasAlarmEmail"
    assert topic["Properties"]["Subscription"] == [
        {"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}
    ]
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 5
    for name, alarm in alarms.items():
        assert "Condition" not in alarm, f"{name} must exist (console) even without AlarmEmail"
        assert alarm["Properties"]["AlarmActions"] == _NOTIFY_TOPIC, name
    deploy = (ROOT / "infra" / "DEPLOY.md").read_text(encoding="utf-8")
    assert "nobody is notified" in deploy


def test_bucket_notifies_the_queue_of_created_and_removed_objects(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["DocsBucket"]
    configs = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert {c["Event"] for c in configs} == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    for config in configs:
        assert config["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    # S3 checks the queue policy when the notification is set: the bucket waits for it
    assert bucket["DependsOn"] == "IngestQueuePolicy"


def test_only_this_bucket_in_this_account_may_send_to_the_queue(template: dict[str, Any]) -> None:
    # GIVEN one example stack (an upper-case stack name included)
    bucket_name = evaluate(template["Resources"]["DocsBucket"]["Properties"]["BucketName"])
    policy = template["Resources"]["IngestQueuePolicy"]["Properties"]["PolicyDocument"]
    ((statement,),) = [policy["Statement"]]
    # THEN the policy names that very bucket without referring to the bucket resource (no cycle)
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    source_arn = evaluate(statement["Condition"]["ArnEquals"]["aws:SourceArn"])
    assert source_arn == f"arn:aws:s3:::{bucket_name}"
    assert statement["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    assert "DocsBucket" not in references(template["Resources"]["IngestQueuePolicy"])
    # AND the computed name is a valid, globally unique-ish S3 bucket name
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", bucket_name), bucket_name
    assert "123456789012" in bucket_name


def test_bucket_is_private_and_encrypted(template: dict[str, Any]) -> None:
    props = template["Resources"]["DocsBucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}


def test_logs_are_kept_thirty_days_and_outputs_name_what_operators_need(
    template: dict[str, Any],
) -> None:
    for function, group in (
        ("ChatFunction", "ChatLogGroup"),
        ("ChatStreamFunction", "ChatStreamLogGroup"),
        ("IngestFunction", "IngestLogGroup"),
    ):
        props = template["Resources"][function]["Properties"]
        assert props["LoggingConfig"]["LogGroup"] == {"Ref": group}
        assert template["Resources"][group]["Properties"]["RetentionInDays"] == 30
    assert {
        "ApiUrl",
        "ChatStreamUrl",
        "DocsBucketName",
        "IngestQueueUrl",
        "DeadLetterQueueUrl",
        "ThreadsTableName",
        "IngestFunctionName",
    } <= set(template["Outputs"])


# --- events/ -----------------------------------------------------------------------------------


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def event_files() -> Iterator[Path]:
    return iter(sorted(EVENTS.glob("*.json")))


def test_every_event_file_is_json_with_a_known_shape() -> None:
    names = {path.name for path in event_files()}
    assert names >= {
        "chat_http_api_v2.json",
        "health_http_api_v2.json",
        "mcp_http_api_v2.json",
        "sqs_s3_put.json",
        "sqs_s3_delete.json",
        "sqs_s3_test_event.json",
        "s3_direct_put.json",
        "reconcile.json",
        "env.json",
    }
    for path in event_files():
        event = load_event(path.name)
        assert isinstance(event, dict) and event, path.name
        if path.name.startswith("sqs_"):
            parse(event, SqsModel)
        elif path.name.startswith("s3_"):
            parse(event, S3Model)
        elif "http_api_v2" in path.name:
            parse(event, APIGatewayProxyEventV2Model)


def test_sqs_events_carry_s3_notifications_the_way_sqs_delivers_them() -> None:
    for name in ("sqs_s3_put.json", "sqs_s3_delete.json", "sqs_s3_test_event.json"):
        for record in load_event(name)["Records"]:
            assert record["eventSource"] == "aws:sqs"
            # the body is a JSON string, and md5OfBody is its real digest
            assert isinstance(record["body"], str)
            assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    put = parse(load_event("sqs_s3_put.json"), S3SqsEventNotificationModel)
    delete = parse(load_event("sqs_s3_delete.json"), S3SqsEventNotificationModel)
    assert {r.body.Records[0].eventName for r in put.Records} == {"ObjectCreated:Put"}
    assert [r.body.Records[0].eventName for r in delete.Records] == [
        "ObjectRemoved:Delete",
        "ObjectRemoved:DeleteMarkerCreated",
    ]
    for record in [*put.Records, *delete.Records]:
        assert record.body.Records[0].s3.object.sequencer
    test_body = json.loads(load_event("sqs_s3_test_event.json")["Records"][0]["body"])
    assert test_body["Event"] == "s3:TestEvent" and "Records" not in test_body


def test_put_events_url_encode_a_key_with_a_space_a_plus_and_unicode() -> None:
    body = json.loads(load_event("sqs_s3_put.json")["Records"][0]["body"])
    raw = body["Records"][0]["s3"]["object"]["key"]
    direct = load_event("s3_direct_put.json")["Records"][0]["s3"]["object"]["key"]
    assert raw == direct
    key = unquote_plus(raw)
    assert " " not in raw and "%2B" in raw and "%" in raw
    assert " " in key and "+" in key and not key.isascii()


def test_http_events_hit_routes_the_api_declares_from_an_allowed_origin(
    template: dict[str, Any],
) -> None:
    routes = {
        f"{e['Properties']['Method']} {e['Properties']['Path']}"
        for e in template["Resources"]["ChatFunction"]["Properties"]["Events"].values()
    }
    env = load_event("env.json")
    allowed = env["ChatFunction"]["CORS_ORIGINS"].split(",")
    for name in ("chat_http_api_v2.json", "health_http_api_v2.json"):
        event = load_event(name)
        assert event["routeKey"] in routes
        assert event["headers"]["origin"] in allowed
    chat = load_event("chat_http_api_v2.json")
    assert chat["headers"]["content-type"] == "application/json"
    assert json.loads(chat["body"])["message"]
    # an MCP client's tools/call, as a coding assistant posts it (no Origin: not a browser)
    mcp = load_event("mcp_http_api_v2.json")
    assert mcp["routeKey"] in routes
    assert mcp["headers"]["content-type"] == "application/json"
    assert {"application/json", "text/event-stream"} <= {
        part.strip() for part in mcp["headers"]["accept"].split(",")
    }
    assert int(mcp["headers"]["content-length"]) == len(mcp["body"].encode())
    message = json.loads(mcp["body"])
    assert message["jsonrpc"] == "2.0" and message["method"] == "tools/call"
    assert message["params"]["name"] == "search_docs"
    assert load_event("reconcile.json") == {"action": "reconcile"}


def test_env_json_overrides_only_variables_the_template_declares_and_holds_no_secrets(
    template: dict[str, Any],
) -> None:
    env = load_event("env.json")
    globals_ = set(template["Globals"]["Function"]["Environment"]["Variables"])
    assert set(env["Parameters"]) <= globals_
    for function in ("ChatFunction", "IngestFunction"):
        # sam local invoke ignores variables the template does not declare
        assert set(env[function]) <= set(function_env(template, function)), function
    for section in env.values():
        for variable, value in section.items():
            assert not re.match(r"sk-|[A-Za-z0-9_-]{40,}$", value), f"{variable} looks like a key"


# --- localstack-compose.yml and scripts --------------------------------------------------------


def test_compose_images_are_pinned(compose: dict[str, Any]) -> None:
    images = {name: service["image"] for name, service in compose["services"].items()}
    assert set(images) == {"localstack", "qdrant"}
    for image in images.values():
        tag = image.partition(":")[2]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{image} is not pinned to a release"
    assert images["localstack"].startswith("localstack/localstack:")
    assert images["qdrant"].startswith("qdrant/qdrant:v1.")


def test_compose_takes_keys_from_the_environment(compose: dict[str, Any]) -> None:
    localstack = compose["services"]["localstack"]["environment"]
    assert localstack["LOCALSTACK_AUTH_TOKEN"] == "${LOCALSTACK_AUTH_TOKEN:-}"
    qdrant = compose["services"]["qdrant"]
    key = qdrant["environment"]["QDRANT__SERVICE__API_KEY"]
    assert key.startswith("${QDRANT_API_KEY:-") and key.endswith("}")
    # the key LocalStack stores as the docsrag/qdrant-api-key secret is the one Qdrant enforces
    assert localstack["QDRANT_API_KEY"] == key


def test_compose_services_are_health_checked_and_keep_data_in_named_volumes(
    compose: dict[str, Any],
) -> None:
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        assert service["healthcheck"]["test"], name
        named = {v.split(":", 1)[0] for v in service["volumes"] if not v.startswith(".")}
        assert named and named <= declared, name
    assert "qdrant_storage:/qdrant/storage" in compose["services"]["qdrant"]["volumes"]
    assert any(p.endswith(":6333:6333") for p in compose["services"]["qdrant"]["ports"])
    mounts = compose["services"]["localstack"]["volumes"]
    init = "./infra/localstack/init-aws.sh:/etc/localstack/init/ready.d/init-aws.sh:ro"
    assert init in mounts
    assert os.access(ROOT / "infra/localstack/init-aws.sh", os.X_OK)


SCRIPTS = [
    "infra/localstack/init-aws.sh",
    "infra/scripts/sam-check.sh",
    "infra/scripts/reconcile.sh",
    "infra/scripts/lock-requirements.sh",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_shell_scripts_are_executable_bash_that_parses(script: str) -> None:
    path = ROOT / script
    assert os.access(path, os.X_OK)
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run([bash, "-n", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_upload_workflow_builds_the_site_and_syncs_it_with_oidc_credentials() -> None:
    workflow = yaml.safe_load((ROOT / "infra/ci/upload-docs.yml").read_text(encoding="utf-8"))
    assert workflow["permissions"]["id-token"] == "write"
    steps = workflow["jobs"]["upload"]["steps"]
    runs = " && ".join(step.get("run", "") for step in steps)
    assert "npm ci" in runs and "npm run build" in runs
    assert re.search(r"aws s3 sync build/ \"s3://\$\{BUCKET\}/\$\{PREFIX\}\" --delete", runs)
    credentials = [
        s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
    ]
    assert len(credentials) == 1 and "role-to-assume" in credentials[0]["with"]
    assert "aws-access-key-id" not in credentials[0]["with"]
    for step in steps:
        if "uses" in step:
            assert re.search(r"@v\d+", step["uses"]), f"{step['uses']} is not pinned to a version"


def test_upload_workflow_may_publish_llms_txt_exported_from_this_build() -> None:
    workflow = yaml.safe_load((ROOT / "infra/ci/upload-docs.yml").read_text(encoding="utf-8"))
    steps = workflow["jobs"]["upload"]["steps"]
    names = [step.get("name", step.get("uses", "")) for step in steps]
    publish = steps[names.index("Publish llms.txt and llms-full.txt beside the site")]
    assert names.index("Sync build/ to the docs bucket") < names.index(publish["name"])
    assert publish["if"] == "vars.DOCSRAG_SITE_BUCKET != ''"  # skipped unless configured
    script = publish["run"]
    assert "${{" not in script, "variables reach the script through env, never inline"
    ingest = script.index("docsrag ingest build/")
    assert ingest < script.index('docsrag export-llms-txt "${RUNNER_TEMP}/llms-txt"')
    assert 'aws s3 cp "${RUNNER_TEMP}/llms-txt/${name}" "s3://${SITE_BUCKET}/${name}"' in script
    assert '--content-type "text/plain; charset=utf-8"' in script
    env = publish["env"]
    assert env["QDRANT_PATH"].startswith("${{ runner.temp }}/")  # a scratch index, not the stack's
    assert "QDRANT_URL" not in env and "OPENROUTER_API_KEY" not in env
    assert "||" in env["SITE_TITLE"]  # SITE_TITLE may not be blank
    python = steps[names.index(publish["name"]) - 1]
    assert python["uses"].startswith("actions/setup-python@") and python["if"] == publish["if"]
