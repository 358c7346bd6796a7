"""A warm Lambda execution environment for one handler, without Docker (stdlib only).

Run by the e2e tests with the Lambda runtime's interpreter, never imported by them:

    python3.12 -I -S -B tests/e2e/lambda_runner.py CODE_DIR LAYER_DIR chat.app.handler

`sys.path` is what Lambda gives a function: its code (`/var/task`), then its layer's `python/`
folder (`/opt/python`), then the standard library; `-I -S` keep every site-packages folder (and
the caller's virtualenv) out, `-B` keeps bytecode from being written into the build. The handler
module is imported once (the init phase), then each line on stdin is one event, invoked with a
Lambda-shaped context, and its result is one JSON line on the original stdout. Everything the
function prints (Powertools' JSON logs, metrics) goes to stderr, as Lambda sends it to CloudWatch.

Protocol lines: first `{"ready": {...}}` or `{"error": "..."}` after the import, then one
`{"response": ...}` or `{"error": "..."}` per event. "ready" says, among other things, which
modules of the package were imported without usable bytecode: no `.pyc` beside them, or one that
is not for this Python or not "unchecked-hash" (the kind Lambda can use as shipped: it is trusted
without comparing the source's timestamp or hashing it). Python compiles those on every start.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any, TextIO


class LambdaContext:
    """The attributes of the runtime's context object that handlers and Powertools read."""

    def __init__(self, function_name: str, memory_mb: int, timeout_s: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = (
            f"arn:aws:lambda:{os.environ.get('AWS_REGION', 'us-east-1')}:123456789012:"
            f"function:{function_name}"
        )
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _without_bytecode(roots: list[str]) -> tuple[int, list[str]]:
    """(modules imported from under `roots`, those of them without usable bytecode)."""
    imported, missing = 0, []
    for module in list(sys.modules.values()):
        source = getattr(module, "__file__", None) or ""
        if not source.endswith(".py") or not source.startswith(tuple(roots)):
            continue
        imported += 1
        try:
            with open(importlib.util.cache_from_source(source), "rb") as pyc:
                header = pyc.read(8)
        except OSError:
            header = b""
        unchecked_hash = int.from_bytes(header[4:8], "little") == 0b01
        if header[:4] != importlib.util.MAGIC_NUMBER or not unchecked_hash:
            missing.append(source)
    return imported, missing


def _send(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def main() -> int:
    code_dir, layer_dir, handler_name = sys.argv[1:4]
    # The protocol keeps the real stdout; the function's own output goes to stderr.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.path[:0] = [code_dir, layer_dir]

    module_name, _, function_name = handler_name.rpartition(".")
    started = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
        handler = getattr(module, function_name)
    except BaseException:
        _send(protocol, {"error": traceback.format_exc()})
        return 1
    imported, without_bytecode = _without_bytecode([code_dir, layer_dir])
    _send(
        protocol,
        {
            "ready": {
                "python": ".".join(str(part) for part in sys.version_info[:3]),
                "init_seconds": time.perf_counter() - started,
                "handler_file": getattr(module, "__file__", None),
                "sys_path": sys.path,
                "modules": sorted(name for name in sys.modules if "." not in name),
                "package_modules": imported,
                "without_bytecode": without_bytecode,
            }
        },
    )

    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
    memory = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"))
    for line in sys.stdin:
        if not line.strip():
            continue
        event = json.loads(line)
        try:
            response = handler(event, LambdaContext(name, memory, timeout_s=300))
            _send(protocol, {"response": response})
        except BaseException:
            _send(protocol, {"error": traceback.format_exc()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
