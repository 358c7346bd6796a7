#!/usr/bin/env bash
# Validate and build the SAM application offline, then check what was built:
#   1. `sam validate --lint` (cfn-lint included; must be clean)
#   2. `sam build` (no container: every dependency has a manylinux wheel for python3.12)
#   3. files no function loads pruned from the built layers (numpy's test suites; botocore's API
#      models of AWS services the chat function never calls: an explicit allow-list, see below)
#   4. bytecode for python3.12 compiled into the build (`sam deploy` ships it; see below)
#   5. each function's size with its layers against the project's budget (220 MB) and Lambda's
#      250 MB unzipped limit, with the largest packages of each layer (the streaming chat function
#      shares the chat layer; the Lambda Web Adapter layer is AWS's, not built here: ~5 MB)
#   6. on an x86_64 host: a clean python3.12 imports every dependency from the built layers, and
#      the handler modules when they exist (catches a package missing from a function's lock),
#      and creates a client for each AWS service the chat layer keeps (catches an over-pruning);
#      the streaming function's uvicorn entry (chat.stream) and start-up script are checked too
#
# aws-sam-cli lives in its own virtualenv (default ~/.cache/docsrag/sam-venv), never in .venv.
# Env: SAM_VERSION (pinned), SAM_VENV, SAM_PYTHON (interpreter for that venv, default python3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SAM_VERSION=${SAM_VERSION:-1.170.0}
SAM_VENV=${SAM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/docsrag/sam-venv}
LAMBDA_UNZIPPED_LIMIT=262144000 # bytes: function + all its layers
# The project's own budget, well under Lambda's limit so that a dependency upgrade cannot push a
# deploy over it unnoticed: CI (`make sam`) fails above it. The chat function is about 190 MB.
SIZE_BUDGET=220000000 # bytes: function + all its layers
# The AWS services the chat function makes botocore clients for: DynamoDB (ChatKit threads, rate
# limits), Secrets Manager and SSM (docsrag.aws.secrets via Powertools parameters), X-Ray (the X-Ray
# SDK's sampling connector, built when Powertools' Tracer starts), STS (credential chain).
# botocore ships an API model for every AWS service (~23 MB); the chat layer keeps only these.
# A new boto3 client in the chat function needs its service here: the handler import and the
# client check below fail on a missing model, and so do the tests/e2e/test_sam_artifact.py runs.
CHAT_BOTOCORE_SERVICES=(dynamodb secretsmanager ssm sts xray)
export SAM_CLI_TELEMETRY=0

# sam build's python workflow needs python3.12 on PATH; under pyenv select an installed 3.12.
if [[ -z ${PYENV_VERSION:-} ]] && command -v pyenv >/dev/null 2>&1; then
  py312=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.[0-9]+$' | tail -n 1 || true)
  if [[ -n $py312 ]]; then
    export PYENV_VERSION=$py312
  fi
fi
if ! python3.12 -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then
  echo "sam-check: python3.12 is not on PATH (sam build needs it for runtime python3.12)" >&2
  exit 1
fi
SAM_PYTHON=${SAM_PYTHON:-python3}

if [[ $("$SAM_VENV/bin/sam" --version 2>/dev/null || true) != "SAM CLI, version $SAM_VERSION" ]]; then
  echo "sam-check: installing aws-sam-cli==$SAM_VERSION into $SAM_VENV"
  "$SAM_PYTHON" -m venv "$SAM_VENV"
  "$SAM_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "aws-sam-cli==$SAM_VERSION"
fi
SAM=$SAM_VENV/bin/sam

cd "$ROOT"
echo "sam-check: $("$SAM" --version); $(python3.12 --version)"

echo "sam-check: sam validate --lint"
"$SAM" validate --lint

echo "sam-check: sam build"
"$SAM" build

# Pruning: `sam build` installs whole wheels, and `sam deploy` ships the build folder as it is, so
# files no function loads are removed here, before the bytecode is compiled. Only files that
# nothing imports at run time: the package manager's view (dist-info RECORD) is left as it is.
prune() {
  local path
  for path in "$@"; do
    if [[ ! -e $path ]]; then
      echo "sam-check: nothing to prune at $path (has a package changed its layout?)" >&2
      exit 1
    fi
    rm -rf -- "$path"
  done
}
for layer_dir in .aws-sam/build/*DependenciesLayer; do
  before=$(du -sb "$layer_dir" | cut -f1)
  # numpy's own test suites (~15 MB): `numpy.testing` (the helpers) stays.
  mapfile -t numpy_tests < <(find "$layer_dir/python/numpy" -type d -name tests -prune 2>/dev/null)
  if ((${#numpy_tests[@]})); then
    prune "${numpy_tests[@]}"
  fi
  if [[ $layer_dir == */ChatDependenciesLayer ]]; then
    data=$layer_dir/python/botocore/data
    for service in "${CHAT_BOTOCORE_SERVICES[@]}"; do
      if [[ ! -d $data/$service ]]; then
        echo "sam-check: botocore in the chat layer has no model for $service" >&2
        exit 1
      fi
    done
    # Service folders only: the shared files (endpoints.json, partitions.json, _retry.json,
    # sdk-default-configuration.json, ...) stay.
    keep=()
    for service in "${CHAT_BOTOCORE_SERVICES[@]}"; do
      keep+=(-not -name "$service")
    done
    mapfile -t unused_models < <(find "$data" -mindepth 1 -maxdepth 1 -type d "${keep[@]}")
    prune "${unused_models[@]}"
  fi
  after=$(du -sb "$layer_dir" | cut -f1)
  printf 'sam-check: pruned %s: %.1f MB -> %.1f MB\n' "$(basename "$layer_dir")" \
    "$(awk -v b="$before" 'BEGIN { print b / 1e6 }')" "$(awk -v b="$after" 'BEGIN { print b / 1e6 }')"
done

# SAM's Python builder ships sources only, and Lambda's /var/task and /opt are read-only: without
# .pyc files every cold start compiles every module it imports, in memory, and throws the result
# away. Unchecked-hash pycs are used as they are, without comparing the source's mtime (zip entries
# carry no reliable timestamps) or hashing it. `sam build` recreates the build folder, so the pycs
# never outlive their sources. `sam deploy` zips the folder as it is, pycs included.
echo "sam-check: compiling bytecode (python3.12, unchecked-hash)"
if ! python3.12 -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build; then
  echo "sam-check: some files in the build do not compile for python3.12 (listed above)" >&2
  exit 1
fi

echo "sam-check: built packages (unzipped; budget $SIZE_BUDGET bytes per function with its layers, Lambda allows $LAMBDA_UNZIPPED_LIMIT)"
du -sh .aws-sam/build/*/
for layer_dir in .aws-sam/build/*DependenciesLayer; do
  echo "sam-check: largest in $(basename "$layer_dir") (MB, bytecode included):"
  du -sb "$layer_dir"/python/*/ | sort -n | tail -n 8 \
    | awk '{ n = split($2, p, "/"); printf "    %6.1f  %s\n", $1 / 1e6, p[n - 1] }'
done
# The layers each function gets from this build (template.yaml, Layers).
declare -A FUNCTION_LAYER=(
  [ChatFunction]=ChatDependenciesLayer
  [ChatStreamFunction]=ChatDependenciesLayer
  [IngestFunction]=IngestDependenciesLayer
)
status=0
for function_dir in .aws-sam/build/*Function; do
  function=$(basename "$function_dir")
  if [[ -z ${FUNCTION_LAYER[$function]:-} ]]; then
    echo "sam-check: $function has no entry in FUNCTION_LAYER" >&2
    status=1
    continue
  fi
  layer_dir=.aws-sam/build/${FUNCTION_LAYER[$function]}
  function_bytes=$(du -sb "$function_dir" | cut -f1)
  layer_bytes=$(du -sb "$layer_dir" | cut -f1)
  total=$((function_bytes + layer_bytes))
  printf 'sam-check: %-18s code %6d KB + layer %6d KB = %6.1f MB\n' "$function" \
    $((function_bytes / 1024)) $((layer_bytes / 1024)) "$(awk -v b="$total" 'BEGIN { printf "%.1f", b / 1e6 }')"
  if ((total > LAMBDA_UNZIPPED_LIMIT)); then
    echo "sam-check: $function is over Lambda's unzipped size limit" >&2
    status=1
  elif ((total > SIZE_BUDGET)); then
    echo "sam-check: $function is over the project's size budget ($SIZE_BUDGET bytes):" \
      "see infra/DEPLOY.md (Packaging) before raising it" >&2
    status=1
  fi
done

if [[ $(uname -m) != x86_64 ]]; then
  echo "sam-check: import check skipped (the build targets x86_64, this host is $(uname -m))"
  exit "$status"
fi

# Import check: a python3.12 without site-packages (-S), writing no bytecode into the build (-B),
# sees only the function's code and its layer, as Lambda does.
import_check() {
  local function=$1 handler_module=$2
  shift 2
  local code=.aws-sam/build/${function}Function
  local layer=.aws-sam/build/${FUNCTION_LAYER[${function}Function]}/python
  # No credentials: an import must not reach AWS (nor, by accident, a real account).
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
    AWS_DEFAULT_REGION=us-east-1 PYTHONPATH="$code:$layer" \
    timeout 120 python3.12 -S -B - "$function" "$code" "$handler_module" "$@" <<'PY'
import importlib
import pathlib
import sys

function, code, handler_module, *modules = sys.argv[1:]
for name in modules:
    importlib.import_module(name)  # a failure here is a dependency missing from the lock
print(f"sam-check: {function}: {len(modules)} dependencies import")
handler_file = pathlib.Path(code, *handler_module.split(".")).with_suffix(".py")
if not handler_file.exists():
    print(f"sam-check: {function}: {handler_file} not written yet; handler import skipped")
    sys.exit(0)
try:
    importlib.import_module(handler_module)
except ImportError as exc:
    print(f"sam-check: {function}: {handler_module} cannot import: {exc!r}", file=sys.stderr)
    sys.exit(1)
except Exception as exc:  # no AWS here: start-up calls that need it may fail, imports did not
    if type(exc).__name__ in {"UnknownServiceError", "DataNotFoundError"}:  # botocore, pruned
        print(f"sam-check: {function}: {handler_module}: {exc!r}", file=sys.stderr)
        sys.exit(1)
    print(f"sam-check: {function}: {handler_module} imported its modules, then: {exc!r}")
else:
    print(f"sam-check: {function}: {handler_module} imports")
PY
}

common=(aws_lambda_powertools aws_xray_sdk boto3 httpx markdown_it openai pydantic
  pydantic_settings Stemmer qdrant_client docsrag.config)
import_check Chat chat.app "${common[@]}" fastapi mangum agents chatkit mcp.server.mcpserver \
  docsrag.mcp_server || status=1
import_check Ingest ingest.app "${common[@]}" frontmatter selectolax.lexbor tenacity || status=1
# The streaming function: uvicorn comes with the chat layer (the MCP SDK requires it).
import_check ChatStream chat.stream "${common[@]}" fastapi agents chatkit uvicorn uvicorn.main \
  || status=1
# Its Handler is run as a program by the adapter's wrapper: it must have kept its execute bit.
if [[ ! -x .aws-sam/build/ChatStreamFunction/chat/run.sh ]]; then
  echo "sam-check: ChatStreamFunction/chat/run.sh is not executable in the build" >&2
  status=1
fi

# The chat layer's pruned botocore: a client for each service it keeps, built the way the function
# builds them (boto3, and Powertools parameters for SSM and Secrets Manager). No network call.
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
  AWS_DEFAULT_REGION=us-east-1 PYTHONPATH=.aws-sam/build/ChatDependenciesLayer/python \
  timeout 120 python3.12 -S -B - "${CHAT_BOTOCORE_SERVICES[@]}" <<'PY' || status=1
import sys

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider

services = sys.argv[1:]
for service in services:
    boto3.client(service)
SecretsProvider()
SSMProvider()
available = boto3.session.Session().get_available_services()
assert sorted(available) == sorted(services), available
print(f"sam-check: Chat: botocore keeps {len(services)} service models; their clients build")
PY
exit "$status"
