"""User-facing errors: the CLI prints their message as one line and exits non-zero, no traceback."""

from __future__ import annotations


class ALBenchError(Exception):
    """A mistake in the user's input or environment (bad config, missing data, impossible budget)."""


class BudgetError(ALBenchError):
    """The requested budget cannot be satisfied by the pool."""


class MissingDatasetError(ALBenchError):
    """Dataset files are not where the config says they are."""


class TrainingDivergedError(ALBenchError):
    """The training loss became NaN or infinite."""


class ConfigMismatchError(ALBenchError):
    """An existing run directory holds a run with a different configuration."""


class UnreadableStateError(ALBenchError):
    """A run's resume state (state.pt) is truncated, corrupt, or not a state file of this al_bench."""


class RunLockedError(ALBenchError):
    """Another process is running in the same run directory."""
