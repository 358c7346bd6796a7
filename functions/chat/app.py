"""Chat Lambda: the FastAPI app behind API Gateway (HTTP API, payload v2) through Mangum.

Settings, secrets and clients are built once per container; after a SnapStart restore the clients
are rebuilt and the secrets read again (a snapshot must not keep sockets or stale credentials).
"""

from __future__ import annotations

import gc
from typing import Any, cast

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from docsrag.api import ContainerProvider, create_app
from docsrag.aws.runtime import after_restore, lambda_settings, share_logging
from docsrag.telemetry import metrics

logger = Logger()
tracer = Tracer()
share_logging(logger)

app = create_app(settings=lambda_settings())
asgi = Mangum(app, lifespan="off")


def _rebuild_after_restore() -> None:
    provider: ContainerProvider = app.state.provider
    provider.reset(lambda_settings())


after_restore(_rebuild_after_restore)
gc.freeze()  # start-up objects (SDKs, app) stay out of the collector's scans


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = asgi(event, cast(Any, context))
    return response
