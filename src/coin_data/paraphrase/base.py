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
    """What a result cost: API requests, tokens, and whether it came from the cache.

    The two kinds of trouble are counted apart: ``faults`` are attempts that got no whole answer
    (transport: a status, a timeout, a dropped connection, a cut-off body; retried with the same body),
    ``reasks`` are whole answers that were unusable and asked again (keyed by the first answer's failure).

    Example:
        >>> total = Usage(requests=2, faults={"timeout": 1})
        >>> total.add(Usage(requests=2, faults={"timeout": 1, "503": 1}, reasks={"malformed_json": 1}))
        >>> total.requests, total.faults, total.reasks
        (4, {'timeout': 2, '503': 1}, {'malformed_json': 1})
    """

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    cost: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)  # transport cause -> failed attempts
    reasks: dict[str, int] = field(default_factory=dict)  # failure of the first answer -> re-asks

    def add(self, other: "Usage") -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost += other.cost
        for mine, theirs in ((self.faults, other.faults), (self.reasks, other.reasks)):
            for name, count in theirs.items():
                mine[name] = mine.get(name, 0) + count


@dataclass
class ParaphraseResult:
    """The candidates produced for one request.

    Attributes:
        request: the request answered.
        candidates: candidate template texts, at most ``request.k``; each is still unchecked.
        source: backend and model, e.g. ``"rules"`` or ``"openai:gpt-4o-mini"``.
        failure: why no candidate could be produced (``None`` when some were); the card counts these.
        usage: cost of producing the result.
        lost: no answer came back (the transport's attempt budget is spent, or the server refused the
            request for good): ``failure`` names the cause, nothing is cached, and a rerun asks again.
            A build stops on lost templates unless it allows a partial dataset.
    """

    request: ParaphraseRequest
    candidates: list[str]
    source: str
    failure: str | None = None
    usage: Usage = field(default_factory=Usage)
    lost: bool = False


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


class TemplatesLost(ParaphraserError):
    """Some templates got no answer from the server; the build wrote nothing (see ``allow_partial``).

    Example:
        >>> str(TemplatesLost({"retries_exhausted: timeout": 2}, 72)).split(";")[0]
        '2 of 72 template(s) lost: no answer from the server (retries_exhausted: timeout 2)'
    """

    def __init__(self, causes: dict[str, int], templates: int):
        self.causes = dict(causes)
        hint = next((f" {text}" for cause, text in _LOST_HINTS
                     if sum(causes.values()) == templates and all(c.startswith(cause) for c in causes)), "")
        super().__init__(
            f"{lost_line(causes, templates)}; no dataset was written.{hint} Answered templates are cached: run "
            "the same command again to ask only for the lost ones, or pass --allow-partial to write the dataset "
            "without them."
        )


# What to check when every template was lost for one transport reason.
_LOST_HINTS = (
    ("retries_exhausted: connection", "Is the server at --base-url running?"),
    ("retries_exhausted: timeout", "The server answers slower than --timeout."),
    ("http_4", "The server rejected the requests (check --paraphraser MODEL and --base-url)."),
)


def lost_line(causes: dict[str, int], templates: int) -> str:
    """``'N of M template(s) lost: no answer from the server (cause n, ...)'``.

    Example:
        >>> lost_line({"http_404": 1}, 3)
        '1 of 3 template(s) lost: no answer from the server (http_404 1)'
    """
    named = ", ".join(f"{cause} {n}" for cause, n in sorted(causes.items()))
    return f"{sum(causes.values())} of {templates} template(s) lost: no answer from the server ({named})"
