#!/usr/bin/env bash
# Validate and build the SAM application offline, then check what was built:
#   1. `sam validate --lint` (cfn-lint included; must be clean)
#   2. `sam build` (no container: every dependency has a manylinux wheel for python3.12)
#   3. bytecode for python3.12 compiled into the build (`sam deploy` ships it; see below)
#   4. each function's size with its layer against Lambda's 250 MB unzipped limit
#   5. on an x86_64 host: a clean python3.12 imports every dependency from the built layers, and
#      the handler modules when they exist (catches a package missing from a function's lock)
#
# aws-sam-cli lives in its own virtualenv (default ~/.cache/docsrag/sam-venv), never in .venv.
# Env: SAM_VERSION (pinned), SAM_VENV, SAM_PYTHON (interpreter for that venv, default python3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SAM_VERSION=${SAM_VERSION:-1.170.0}
SAM_VENV=${SAM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/docsrag/sam-venv}
LAMBDA_UNZIPPED_LIMIT=262144000 # bytes: function + all its layers
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

echo "sam-check: built packages (unzipped; Lambda allows $LAMBDA_UNZIPPED_LIMIT bytes per function with its layers)"
du -sh .aws-sam/build/*/
status=0
for function_dir in .aws-sam/build/*Function; do
  function=$(basename "$function_dir")
  layer_dir=.aws-sam/build/${function%Function}DependenciesLayer
  function_bytes=$(du -sb "$function_dir" | cut -f1)
  layer_bytes=$(du -sb "$layer_dir" | cut -f1)
  total=$((function_bytes + layer_bytes))
  printf 'sam-check: %-16s code %6d KB + layer %6d KB = %6.1f MB\n' "$function" \
    $((function_bytes / 1024)) $((layer_bytes / 1024)) "$(awk -v b="$total" 'BEGIN { printf "%.1f", b / 1e6 }')"
  if ((total > LAMBDA_UNZIPPED_LIMIT)); then
    echo "sam-check: $function is over Lambda's unzipped size limit" >&2
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
  local code=.aws-sam/build/${function}Function layer=.aws-sam/build/${function}DependenciesLayer/python
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
    print(f"sam-check: {function}: {handler_module} imported its modules, then: {exc!r}")
else:
    print(f"sam-check: {function}: {handler_module} imports")
PY
}

common=(aws_lambda_powertools aws_xray_sdk boto3 httpx markdown_it openai pydantic
  pydantic_settings Stemmer frontmatter qdrant_client selectolax.lexbor tenacity docsrag.config)
import_check Chat chat.app "${common[@]}" fastapi mangum agents chatkit mcp.server.mcpserver \
  docsrag.mcp_server || status=1
import_check Ingest ingest.app "${common[@]}" || status=1
exit "$status"
