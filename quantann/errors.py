"""Exceptions raised by quantann. Each names what is wrong and, where it can, what to do."""


class QuantannError(Exception):
    """Base class for quantann errors."""


class FormatError(QuantannError, ValueError):
    """An index or model file is corrupt, truncated, foreign or from a newer version."""


class MemoryBudgetError(QuantannError, MemoryError):
    """Loading or growing the index would exceed the configured memory budget."""

    def __init__(self, message, breakdown=None, budget=None):
        super().__init__(message)
        self.breakdown = breakdown
        self.budget = budget


class PromptTooLongError(QuantannError, ValueError):
    """A prompt (a question with no passage, say) leaves no room for max_tokens in the
    model's context."""
