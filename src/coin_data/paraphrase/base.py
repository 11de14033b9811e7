"""The paraphraser protocol every backend implements.

A backend receives one :class:`ParaphraseRequest` per unique template and returns one
:class:`ParaphraseResult` per request, in the same order. It never sees instances: the pipeline
refills the paraphrased template with each instance's fields, so the cost of paraphrasing depends
on the number of templates, not on the size of the dataset.

Example:
    >>> from coin_data.templates import parse_template
    >>> req = ParaphraseRequest(parse_template("Text: {text}\\nTopic?\\n{options_}", "topic", "t0"), k=2)
    >>> req.key
    ('topic', 't0')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence, runtime_checkable

from coin_data.templates import Template

# Progress callback: called with the number of requests just finished.
ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class ParaphraseRequest:
    """Ask for ``k`` rewordings of one template.

    Attributes:
        template: the parsed original template; every candidate must keep its slots.
        k: number of candidates wanted.
        protected_words: words that must not change (label words of the answer set).
        seed: per-request seed; backends derive all randomness from it.
    """

    template: Template
    k: int
    protected_words: tuple[str, ...] = ()
    seed: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.template.task, self.template.template_id)

    def cache_parts(self) -> dict[str, object]:
        """What identifies this request in an answer-cache key (backends add their model and sampling).

        Example:
            >>> from coin_data.templates import parse_template
            >>> ParaphraseRequest(parse_template("Q: {q}"), k=2).cache_parts()
            {'template': 'Q: {q}', 'k': 2, 'protected_words': [], 'seed': 0}
        """
        return {"template": self.template.text, "k": self.k, "protected_words": list(self.protected_words),
                "seed": self.seed}


@dataclass
class Usage:
    """What a result cost: API requests, tokens, and whether it came from the cache."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    cost: float = 0.0

    def add(self, other: "Usage") -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost += other.cost


@dataclass
class ParaphraseResult:
    """The candidates produced for one request.

    Attributes:
        request: the request answered.
        candidates: candidate template texts, at most ``request.k``; each is still unchecked.
        source: backend and model, e.g. ``"rules"`` or ``"openai:gpt-4o-mini"``.
        failure: why no candidate could be produced (``None`` when some were); the card counts these.
        usage: cost of producing the result.
    """

    request: ParaphraseRequest
    candidates: list[str]
    source: str
    failure: str | None = None
    usage: Usage = field(default_factory=Usage)


@runtime_checkable
class Paraphraser(Protocol):
    """A paraphrasing backend.

    ``name`` is recorded in the dataset's ``paraphrase_source`` column.
    """

    name: str

    def paraphrase(
        self, requests: Sequence[ParaphraseRequest], progress: ProgressFn | None = None
    ) -> list[ParaphraseResult]:
        """Return one result per request, in request order."""
        ...


class ParaphraserError(RuntimeError):
    """A backend cannot run at all (unknown spec, missing model or credentials)."""
