#!/bin/bash
# Start-up command of the streaming chat function (template.yaml: ChatStreamFunction, Handler
# chat/run.sh). The Lambda Web Adapter's wrapper (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap) runs
# `exec "${LAMBDA_TASK_ROOT}/${_HANDLER}"` instead of the Python runtime; the adapter then polls
# http://127.0.0.1:${AWS_LWA_PORT}${AWS_LWA_READINESS_CHECK_PATH} and forwards each request to
# uvicorn, streaming the response back (AWS_LWA_INVOKE_MODE=response_stream).
#
# The Python runtime puts the function's code and the layers on sys.path itself; a plain
# `python3` does not, so PYTHONPATH does: the code (/var/task), then the layers (/opt/python).
# One process, one worker: Lambda sends one request at a time to an execution environment.
set -euo pipefail

export PYTHONPATH="${LAMBDA_TASK_ROOT}:/opt/python${PYTHONPATH:+:${PYTHONPATH}}"
exec python3 -m uvicorn chat.stream:app \
  --host 127.0.0.1 --port "${AWS_LWA_PORT:-8080}" \
  --no-access-log --no-server-header --timeout-graceful-shutdown 2
