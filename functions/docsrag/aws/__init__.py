"""Adapters for running on AWS Lambda (secrets, logging). Only the Lambda handlers import this;
the rest of `docsrag` imports without AWS."""
