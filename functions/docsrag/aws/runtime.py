"""What both Lambda handlers do once per container: settings with secrets, and logging."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from docsrag.aws.secrets import secret_overrides
from docsrag.config import Settings, load_settings


def lambda_settings() -> Settings:
    """`Settings` from the environment, secrets resolved from their `<NAME>_SECRET` references."""
    return load_settings(**secret_overrides())


def share_logging(logger: Logger) -> None:
    """Send the domain package's stdlib logs through the handler's Powertools JSON logger, so they
    carry the same correlation id and Lambda context."""
    logging.getLogger("docsrag")  # make sure the package logger exists before copying config
    copy_config_to_registered_loggers(source_logger=logger, include={"docsrag"})


def after_restore(callback: object) -> None:
    """Register `callback` to run after a SnapStart restore (no-op outside Lambda)."""
    try:
        from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found]
    except ImportError:
        return
    register_after_restore(callback)
