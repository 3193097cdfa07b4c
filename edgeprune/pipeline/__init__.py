"""The budget pipeline: ``python -m edgeprune.pipeline --model fastgrnn --budget-kb 8``."""

from edgeprune.pipeline.cli import main

__all__ = ["main"]
