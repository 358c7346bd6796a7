"""What both Lambda handlers do once per container: settings with secrets, and logging."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from docsrag.aws.secrets import clear_secret_cache, secret_overrides
from docsrag.config import Settings, load_settings


def lambda_settings() -> Settings:
    """`Settings` from the environment, secrets resolved from their `<NAME>_SECRET` references."""
    return load_settings(**secret_overrides())


def share_logging(logger: Logger) -> None:
    """Send the domain package's stdlib logs through the handler's Powertools JSON logger, so they
    carry the same correlation id and Lambda context."""
    logging.getLogger("docsrag")  # make sure the package logger exists before copying config
    copy_config_to_registered_loggers(source_logger=logger, include={"docsrag"})


def after_restore(callback: Callable[[], object]) -> None:
    """Run `callback` after a SnapStart restore (no-op outside Lambda). Secrets cached in the
    snapshot are forgotten first, so a callback that rebuilds settings reads them again."""
    try:
        from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found]
    except ImportError:
        return

    def restored() -> None:
        clear_secret_cache()
        callback()

    register_after_restore(restored)
