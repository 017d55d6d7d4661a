"""What every judge backend returns, and the errors it raises."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from scoring.judging.prompts import JudgeInput


class JudgeBackendError(Exception):
    """The backend cannot judge (bad configuration, a server without logprobs, ...)."""


@dataclass(frozen=True)
class OrderScore:
    """The judge's answer for one shown order of one comparison."""

    key: tuple[int, str]
    label_probs: dict[str, float]  # renormalised over the label tokens
    p_first: float  # P(the first shown response is better)
    truncated: bool = False
    raw: dict = field(default_factory=dict)  # e.g. raw label logprobs, mass on the labels


class JudgeBackend(Protocol):
    def score(self, inputs: Sequence[JudgeInput]) -> list[OrderScore]:
        """One OrderScore per input, in the order given (batching inside is free)."""
        ...

    def close(self) -> None: ...
