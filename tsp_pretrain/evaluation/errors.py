"""The one error type of the evaluation package.

Kept in its own module so that every evaluation module can raise it without importing the others.
"""

from __future__ import annotations


class EvaluationError(ValueError):
    """Inputs that cannot be evaluated; the message names the video or table and the fix."""
