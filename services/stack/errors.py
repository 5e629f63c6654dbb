"""Errors of the local stack."""


class StackError(RuntimeError):
    """A local-stack component failed to install or start."""
