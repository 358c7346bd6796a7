"""The deployment package, run as Lambda runs it: the `sam build` artifact under python3.12.

The closest thing to `sam local invoke` without Docker. Each function runs in a python3.12
process whose `sys.path` is exactly Lambda's: the function's build folder and its layer's
`python/` folder, nothing from this project's virtualenv (see `lambda_runner.py`). The process
stays up between invocations, like a warm execution environment, and gets the events in `events/`
verbatim; it must run from the bytecode the build ships (`make sam` compiles it). AWS is a moto
server in this process (S3 and Secrets Manager, reached through `AWS_ENDPOINT_URL`); the model
endpoint is the loopback fake OpenAI server; Qdrant is embedded in a temporary folder the two
functions use in turn.

Needs python3.12 and `.aws-sam/build` (`make sam`; CI runs it before `make test`); skipped, with
the reason, when either is missing.
"""

from __future__ import annotations

import copy
import filecmp
import json
import logging
import os
import select
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote_plus

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import REPO_ROOT, SAMPLE_DOCS
from tests.fakes.openai_server import FakeOpenAI

BUILD = REPO_ROOT / ".aws-sam" / "build"
EVENTS = REPO_ROOT / "events"
RUNNER = Path(__file__).with_name("lambda_runner.py")

REGION = "eu-central-1"
EVENTS_BUCKET = "docsrag-docs-123456789012-1a2b3c4d"  # the bucket the sample events name
SITE_URL = "https://docs.example.org"
DIMENSIONS = 256
INVOKE_TIMEOUT_SECONDS = 180
MCP_TOKEN = "sam-artifact-mcp-bearer-token-0123456789"

Function = Literal["Chat", "Ingest"]
HANDLERS: dict[Function, str] = {"Chat": "chat.app.handler", "Ingest": "ingest.app.handler"}


# --- Finding python3.12 and the artifact ----------------------------------------------------------


def _is_python312(candidate: str) -> bool:
    try:
        result = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.stdout.strip() == "True"


def find_python312() -> str | None:
    """`python3.12` on PATH, else the newest pyenv 3.12 (a pyenv shim on PATH may not be one)."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which("python3.12")]
    candidates += [
        str(path)
        for path in sorted(pyenv_root.glob("versions/3.12.*/bin/python3.12"), reverse=True)
    ]
    return next((c for c in candidates if c and _is_python312(c)), None)


@pytest.fixture(scope="session")
def python312() -> str:
    python = find_python312()
    if python is None:
        pytest.skip("python3.12 (Lambda's runtime) not found on PATH or under pyenv")
    return python


def _stale_sources() -> list[str]:
    """Source files that differ from their copy in the artifact (an old `sam build`)."""
    stale = []
    for source in sorted((REPO_ROOT / "functions").glob("*/**/*.py")):
        relative = source.relative_to(REPO_ROOT / "functions")
        if relative.parts[0] == "layers":
            continue
        built = BUILD / "ChatFunction" / relative
        if not built.is_file() or not filecmp.cmp(source, built, shallow=False):
            stale.append(str(relative))
    return stale


@pytest.fixture(scope="session")
def sam_build() -> Path:
    needed = [
        BUILD / "ChatFunction" / "chat" / "app.py",
        BUILD / "IngestFunction" / "ingest" / "app.py",
        BUILD / "ChatDependenciesLayer" / "python",
        BUILD / "IngestDependenciesLayer" / "python",
    ]
    missing = [str(path.relative_to(REPO_ROOT)) for path in needed if not path.exists()]
    if missing:
        pytest.skip(
            f"no `sam build` artifact ({', '.join(missing)} missing): run `make sam` first "
            "(CI runs `make sam` before `make test`)"
        )
    stale = _stale_sources()
    if stale:
        warnings.warn(
            f"the sam build artifact is older than {len(stale)} source file(s) (e.g. {stale[0]}): "
            "these tests run the artifact as built; run `make sam` to test the current code",
            stacklevel=1,
        )
    return BUILD


# --- A warm Lambda execution environment in a python3.12 process ----------------------------------


class LambdaProcess:
    """One function's build, imported once by python3.12, invoked once per event."""

    def __init__(self, *, python: str, function: Function, env: dict[str, str], log: Path) -> None:
        handler = HANDLERS[function]  # the template's Handler
        self.code = BUILD / f"{function}Function"
        self.layer = BUILD / f"{function}DependenciesLayer" / "python"
        self.log = log
        self._log_file = log.open("w", encoding="utf-8")
        self._process = subprocess.Popen(
            [python, "-I", "-S", "-B", str(RUNNER), str(self.code), str(self.layer), handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            env=env,
            cwd=self.code,  # /var/task
            text=True,
            encoding="utf-8",
        )
        reply = self._read()
        if "ready" not in reply:
            self.close()
            raise AssertionError(f"{handler} failed to import:\n{reply.get('error')}")
        self.ready: dict[str, Any] = reply["ready"]

    def invoke(self, event: dict[str, Any]) -> Any:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(event) + "\n")
        self._process.stdin.flush()
        reply = self._read()
        if "error" in reply:
            raise AssertionError(f"the handler raised:\n{reply['error']}\n{self.log_tail()}")
        return reply["response"]

    def log_tail(self, lines: int = 30) -> str:
        self._log_file.flush()
        tail = self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        return "--- function log (tail) ---\n" + "\n".join(tail)

    def _read(self) -> dict[str, Any]:
        stdout = self._process.stdout
        assert stdout is not None
        readable, _, _ = select.select([stdout], [], [], INVOKE_TIMEOUT_SECONDS)
        if not readable:
            self._process.kill()
            raise AssertionError(f"no reply in {INVOKE_TIMEOUT_SECONDS} s\n{self.log_tail()}")
        line = stdout.readline()
        if not line:
            code = self._process.wait(timeout=30)
            raise AssertionError(f"the runtime exited with {code}\n{self.log_tail()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log_file.close()

    def __enter__(self) -> LambdaProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def lambda_env(
    function: Function, *, aws_endpoint: str, fake: FakeOpenAI, home: Path, **variables: str
) -> dict[str, str]:
    """The environment Lambda (as `sam local invoke` does) gives the function: the runtime's
    variables, the template's, and `variables` (the secrets' ARNs, the bucket, ...)."""
    code = BUILD / f"{function}Function"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(home),
        # Set by the Lambda runtime.
        "AWS_LAMBDA_FUNCTION_NAME": f"docsrag-{function.lower()}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_TASK_ROOT": str(code),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        # Set by `sam local invoke`; Powertools then keeps X-Ray off (there is no daemon).
        "AWS_SAM_LOCAL": "true",
        # AWS is the moto server; no profile, no metadata service, no real credentials.
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy credentials
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        # template.yaml, Globals.Function.Environment.
        "POWERTOOLS_SERVICE_NAME": "docsrag",
        "POWERTOOLS_METRICS_NAMESPACE": "DocsRag",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        "LOG_LEVEL": "INFO",
        "SITE_URL": SITE_URL,
        "KEY_PREFIX": "site/",
        "DOCS_ROUTE_BASE_PATH": "docs",
        "COLLECTION_NAME": "docs",
        "EMBEDDING_MODEL": "openai/text-embedding-3-small",
        "EMBEDDING_DIMENSIONS": str(DIMENSIONS),
        # Instead of the template's QDRANT_URL and OpenRouter: an embedded Qdrant folder (set by
        # the test) and the fake model server.
        "OPENROUTER_BASE_URL": fake.base_url,
    }
    env.update(variables)
    return env


# --- AWS (moto) -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws_endpoint() -> Iterator[str]:
    access_log = logging.getLogger("werkzeug")  # one line per request the functions make
    level = access_log.level
    access_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    access_log.setLevel(level)


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto's dummy credentials
    )


@pytest.fixture(scope="module")
def s3(aws_endpoint: str) -> Any:
    return _client("s3", aws_endpoint)


@pytest.fixture(scope="module")
def secret_arns(aws_endpoint: str, fake_openai_server: FakeOpenAI) -> dict[str, str]:
    """The `*_SECRET` variables, each naming a secret in Secrets Manager by its ARN."""
    secrets = _client("secretsmanager", aws_endpoint)
    values = {
        "OPENROUTER_API_KEY_SECRET": ("docsrag/openrouter-api-key", fake_openai_server.api_key),
        "VISITOR_TOKEN_KEYS_SECRET": ("docsrag/visitor-token-key", "k" * 48),
        "MCP_BEARER_TOKEN_SECRET": ("docsrag/mcp-bearer-token", MCP_TOKEN),
    }
    return {
        variable: secrets.create_secret(Name=name, SecretString=value)["ARN"]
        for variable, (name, value) in values.items()
    }


def _create_bucket(s3: Any, name: str) -> None:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})


def _upload_sample_docs(s3: Any, bucket: str) -> int:
    """The project's docs/ as Markdown sources under `site/`; returns how many are pages."""
    pages = 0
    for path in sorted(SAMPLE_DOCS.rglob("*")):
        if path.is_file():
            key = "site/" + path.relative_to(SAMPLE_DOCS).as_posix()
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            pages += path.suffix in {".md", ".mdx"} and not path.name.startswith("_")
    return pages


# --- Events ---------------------------------------------------------------------------------------


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def object_keys(sqs_event: dict[str, Any]) -> list[str]:
    """The (decoded) object keys the S3 notifications inside an SQS event name."""
    return [
        unquote_plus(s3_record["s3"]["object"]["key"])
        for record in sqs_event["Records"]
        for s3_record in json.loads(record["body"]).get("Records", [])
    ]


def docusaurus_page(title: str, paragraphs: list[str]) -> bytes:
    """A page as a Docusaurus build writes it: chrome around `article div.theme-doc-markdown`."""
    body = "".join(f"<p>{text}</p>" for text in paragraphs)
    return (
        '<!doctype html><html lang="en"><head><meta charset="UTF-8">'
        f"<title>{title} | Example docs</title></head><body>"
        '<nav class="navbar"><a href="/">Example docs</a></nav>'
        '<div class="main-wrapper"><aside class="theme-doc-sidebar-container">'
        '<a href="/docs/intro/">Intro</a></aside><main><div class="row"><article>'
        f'<div class="theme-doc-markdown markdown"><header><h1>{title}</h1></header>{body}'
        '<h2 class="anchor" id="next-steps">Next steps<a href="#next-steps" class="hash-link">'
        "\u200b</a></h2><p>Read the other guides in the sidebar.</p></div>"
        "</article></div></main></div></body></html>"
    ).encode()


# --- Tests ----------------------------------------------------------------------------------------


def assert_runs_from_shipped_bytecode(ready: dict[str, Any]) -> None:
    """Every module imported from the package had bytecode Lambda can use as shipped."""
    missing = ready["without_bytecode"]
    assert ready["package_modules"] > 100
    assert not missing, (
        f"{len(missing)} modules have no unchecked-hash python3.12 bytecode in the build (e.g. "
        f"{missing[0]}), so Lambda would compile them at every cold start: build with `make sam`"
    )


def test_ingest_handler_applies_the_sample_events(
    python312: str,
    sam_build: Path,
    aws_endpoint: str,
    s3: Any,
    secret_arns: dict[str, str],
    fake_openai: FakeOpenAI,
    tmp_path: Path,
) -> None:
    # GIVEN the bucket the sample events name, holding the pages `sqs_s3_put.json` announces, the
    # pages `sqs_s3_delete.json` will remove, and the sample docs as Markdown sources
    put_keys = object_keys(load_event("sqs_s3_put.json"))
    delete_keys = object_keys(load_event("sqs_s3_delete.json"))
    _create_bucket(s3, EVENTS_BUCKET)
    for key in put_keys + delete_keys:
        title = key.split("/")[-2 if key.endswith("index.html") else -1].removesuffix(".html")
        page = docusaurus_page(
            title,
            [f"This page is {title}. It explains how sidebars group the docs pages.",
             "Sidebars are generated from the docs folder unless sidebars.js lists them."],
        )  # fmt: skip
        s3.put_object(Bucket=EVENTS_BUCKET, Key=key, Body=page, ContentType="text/html")
    markdown_pages = _upload_sample_docs(s3, EVENTS_BUCKET)
    s3.put_object(Bucket=EVENTS_BUCKET, Key="site/assets/js/main.js", Body=b"console.log(1)")
    env = lambda_env(
        "Ingest",
        aws_endpoint=aws_endpoint,
        fake=fake_openai,
        home=tmp_path,
        DOCS_BUCKET=EVENTS_BUCKET,
        QDRANT_PATH=str(tmp_path / "qdrant"),
        OPENROUTER_API_KEY_SECRET=secret_arns["OPENROUTER_API_KEY_SECRET"],
    )

    with LambdaProcess(
        python=python312, function="Ingest", env=env, log=tmp_path / "ingest.log"
    ) as ingest:
        # The package runs on 3.12 from the build alone and its bytecode, without the chat
        # function's web stack.
        assert ingest.ready["python"].startswith("3.12.")
        assert Path(ingest.ready["handler_file"]).is_relative_to(sam_build / "IngestFunction")
        assert not {"fastapi", "mangum", "agents", "chatkit"} & set(ingest.ready["modules"])
        assert_runs_from_shipped_bytecode(ingest.ready)

        # WHEN S3's test message arrives (sent when notifications are configured)
        # THEN it is acknowledged and costs nothing
        assert ingest.invoke(load_event("sqs_s3_test_event.json")) == {"batchItemFailures": []}
        assert fake_openai.embedding_calls == 0

        # WHEN the two uploads are notified through the queue (URL-encoded, non-ASCII key included)
        assert ingest.invoke(load_event("sqs_s3_put.json")) == {"batchItemFailures": []}
        # THEN both pages are embedded
        embedded = fake_openai.embedding_calls
        assert embedded >= 1

        # WHEN the same upload arrives as a direct S3 event: the object is already indexed
        summary = ingest.invoke(load_event("s3_direct_put.json"))
        assert (summary["unchanged"], summary["added"], summary["failed"]) == (1, 0, 0)
        assert fake_openai.embedding_calls == embedded

        # WHEN a reconcile runs: everything else in the bucket is indexed, the asset ignored
        report = ingest.invoke(load_event("reconcile.json"))
        assert report["bucket"] == EVENTS_BUCKET
        assert report["added"] + report["skipped"] == markdown_pages + len(delete_keys)
        assert report["added"] > markdown_pages // 2
        assert (report["unchanged"], report["failed"], report["deleted"]) == (2, 0, 0)

        # WHEN two pages are deleted from the bucket and the removal notifications arrive
        for key in delete_keys:
            s3.delete_object(Bucket=EVENTS_BUCKET, Key=key)
        assert ingest.invoke(load_event("sqs_s3_delete.json")) == {"batchItemFailures": []}

        # THEN the index matches the bucket: a reconcile finds nothing to add, change or delete
        embedded = fake_openai.embedding_calls
        again = ingest.invoke(load_event("reconcile.json"))
        assert (again["added"], again["updated"], again["deleted"], again["failed"]) == (0, 0, 0, 0)
        assert again["unchanged"] == report["added"] + report["unchanged"] - len(delete_keys)
        assert fake_openai.embedding_calls == embedded

        # WHEN one message of a batch is not an S3 notification
        # THEN only that message is reported for retry
        batch = load_event("sqs_s3_test_event.json")
        bad = copy.deepcopy(batch["Records"][0])
        bad.update(messageId="not-a-notification", body="{truncated")
        batch["Records"].append(bad)
        assert ingest.invoke(batch) == {
            "batchItemFailures": [{"itemIdentifier": "not-a-notification"}]
        }


def test_chat_handler_answers_from_the_index_the_ingest_handler_built(
    python312: str,
    sam_build: Path,
    aws_endpoint: str,
    s3: Any,
    secret_arns: dict[str, str],
    fake_openai: FakeOpenAI,
    tmp_path: Path,
) -> None:
    # GIVEN the sample docs in a bucket, indexed by the ingest function's reconcile
    bucket = "docsrag-docs-123456789012-chat"
    _create_bucket(s3, bucket)
    markdown_pages = _upload_sample_docs(s3, bucket)
    qdrant = str(tmp_path / "qdrant")
    common: dict[str, Any] = {"aws_endpoint": aws_endpoint, "fake": fake_openai, "home": tmp_path}
    ingest_env = lambda_env(
        "Ingest",
        **common,
        DOCS_BUCKET=bucket,
        QDRANT_PATH=qdrant,
        OPENROUTER_API_KEY_SECRET=secret_arns["OPENROUTER_API_KEY_SECRET"],
    )
    with LambdaProcess(
        python=python312, function="Ingest", env=ingest_env, log=tmp_path / "ingest.log"
    ) as ingest:
        report = ingest.invoke(load_event("reconcile.json"))
    assert report["added"] + report["skipped"] == markdown_pages
    assert report["failed"] == 0

    chat_env = lambda_env(
        "Chat",
        **common,
        QDRANT_PATH=qdrant,
        OPENROUTER_API_KEY_SECRET=secret_arns["OPENROUTER_API_KEY_SECRET"],
        VISITOR_TOKEN_KEYS_SECRET=secret_arns["VISITOR_TOKEN_KEYS_SECRET"],
        CHAT_MODEL="openai/gpt-oss-20b:free",
        FALLBACK_MODELS="",
        LLM_TIMEOUT_SECONDS="20",
        EMBEDDING_TIMEOUT_SECONDS="5",
        EMBEDDING_MAX_RETRIES="1",
        CORS_ORIGINS=f"{SITE_URL},http://localhost:3000",
        CORS_VIA_GATEWAY="true",
        CHATKIT_SQLITE_PATH=str(tmp_path / "chatkit.sqlite3"),
    )
    with LambdaProcess(
        python=python312, function="Chat", env=chat_env, log=tmp_path / "chat.log"
    ) as chat:
        assert chat.ready["python"].startswith("3.12.")
        assert Path(chat.ready["handler_file"]).is_relative_to(sam_build / "ChatFunction")
        assert_runs_from_shipped_bytecode(chat.ready)

        # WHEN the HTTP API forwards GET /health
        health = chat.invoke(load_event("health_http_api_v2.json"))
        # THEN the function reports the index it reads and the model key it got from Secrets
        # Manager
        assert health["statusCode"] == 200, health
        status = json.loads(health["body"])
        assert status["status"] == "ok"
        assert status["llm"] == "configured"
        assert status["index"]["chunks"] > 0

        # WHEN the HTTP API forwards the sample POST /chat
        event = load_event("chat_http_api_v2.json")
        response = chat.invoke(event)
        # THEN it answers with JSON, tagged with API Gateway's request id
        assert response["statusCode"] == 200, response
        assert response["headers"]["content-type"] == "application/json"
        assert response["headers"]["x-request-id"] == event["requestContext"]["requestId"]
        body = json.loads(response["body"])
        assert set(body) == {"answer", "sources", "mode", "version", "locale"}
        assert body["answer"].strip()

        # WHEN a visitor asks something the docs cover
        fake_openai.reset()
        event["body"] = json.dumps({"message": "How do I deploy the stack with sam deploy?"})
        event["headers"]["content-length"] = str(len(event["body"]))
        response = chat.invoke(event)
        # THEN the model wrote the answer from cited sections of the indexed docs
        assert response["statusCode"] == 200, response
        body = json.loads(response["body"])
        assert body["mode"] == "llm"
        assert fake_openai.chat_calls >= 1
        assert body["sources"]
        assert all(source["url"].startswith(f"{SITE_URL}/docs/") for source in body["sources"])
        assert any("/docs/deployment/" in source["url"] for source in body["sources"])

    # GIVEN a new, cold chat container with the MCP bearer token in Secrets Manager
    with LambdaProcess(
        python=python312,
        function="Chat",
        env=chat_env
        | {
            "MCP_ENABLED": "true",
            "MCP_BEARER_TOKEN_SECRET": secret_arns["MCP_BEARER_TOKEN_SECRET"],
        },
        log=tmp_path / "chat-mcp.log",
    ) as cold:
        # WHEN its first invocation ever is the sample MCP tools/call, with the token
        event = load_event("mcp_http_api_v2.json")
        event["headers"]["authorization"] = f"Bearer {MCP_TOKEN}"
        found = cold.invoke(event)
        # THEN search_docs answers with sections of the indexed docs, as JSON
        assert found["statusCode"] == 200, found
        assert found["headers"]["content-type"] == "application/json"
        result = json.loads(found["body"])["result"]
        assert result["isError"] is False
        urls = [section["url"] for section in result["structuredContent"]["results"]]
        assert 1 <= len(urls) <= 3
        assert any("/docs/deployment/aws-sam" in url for url in urls)

        # AND tools/list works on the same warm container, names and all
        listed_event = load_event("mcp_http_api_v2.json")
        listed_event["body"] = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        listed_event["headers"]["content-length"] = str(len(listed_event["body"]))
        listed_event["headers"]["authorization"] = f"Bearer {MCP_TOKEN}"
        listed = cold.invoke(listed_event)
        assert listed["statusCode"] == 200, listed
        tools = json.loads(listed["body"])["result"]["tools"]
        assert [tool["name"] for tool in tools] == ["search_docs", "read_page", "ask_docs"]

        # AND without the token the request is refused before the MCP SDK sees it
        refused = cold.invoke(load_event("mcp_http_api_v2.json"))
        assert refused["statusCode"] == 401
        assert json.loads(refused["body"])["error"]["code"] == "unauthorized"
        assert MCP_TOKEN not in cold.log_tail(lines=10_000)
