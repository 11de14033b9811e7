"""Hub failures as one line: which errors mean the Hub failed, what to say, the token kept secret.

Both ``coin-data publish`` and ``coin-train --push_to_hub`` report a failed Hub request through
:func:`hub_failure`: the Hub could not be reached (check the connection or ``HF_ENDPOINT``), or it answered
with an HTTP error (the status, the library's first line and the server's own explanation; for 401/403, a
hint about the token's write access). A token that the error happens to quote is replaced by ``***``.

Example:
    >>> hub_failure(ConnectionError("refused"), verb="publish", repo_id="alice/coin",
    ...             url="http://hub/datasets/alice/coin", endpoint="http://hub", token=None, token_sources="HF_TOKEN")
    'cannot reach the Hub at http://hub to publish alice/coin (refused): check the connection or HF_ENDPOINT'
"""

from __future__ import annotations


def hub_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the Hub refused, failed or could not be reached."""
    from huggingface_hub.errors import HfHubHTTPError

    errors: list[type[BaseException]] = [HfHubHTTPError, ConnectionError, TimeoutError]
    try:  # huggingface_hub >= 2 speaks HTTP through httpx2, older versions through requests or httpx
        import httpx2

        errors.append(httpx2.TransportError)
    except ImportError:
        pass
    return tuple(errors)


def token_leaks(text: str, token: str | None) -> bool:
    """Whether ``text`` shows ``token`` (a secret to be masked before the text is shown or raised).

    Example:
        >>> token_leaks("bad token hf_abcdefgh", "hf_abcdefgh"), token_leaks("bad token", "hf_abcdefgh")
        (True, False)
    """
    # Below 8 characters a "token" is no secret worth mangling a message for (real ones are ~37).
    return bool(token) and len(token) >= 8 and token in text


def hub_status(err: BaseException) -> int | None:
    """The HTTP status the Hub answered with, or ``None`` when it was not reached.

    Example:
        >>> hub_status(ConnectionError("refused")) is None
        True
    """
    return getattr(getattr(err, "response", None), "status_code", None)


def hub_failure(err: BaseException, *, verb: str, repo_id: str, url: str, endpoint: str, token: str | None,
                token_sources: str, alternative: str = "") -> str:
    """One line for a failed Hub request: what failed, and what to do; never the token.

    Args:
        err: the exception raised by ``huggingface_hub`` (one of :func:`hub_errors`).
        verb: what was being done to the repo, a verb whose ``-ing`` form is ``verb + "ing"`` (``publish``).
        repo_id: the target repo (``OWNER/NAME``).
        url: the repo's address on the Hub.
        endpoint: the Hub address used.
        token: the token used (masked should the error quote it).
        token_sources: where the token comes from, named in the hint for a refused request.
        alternative: another way forward, offered when the Hub could not be reached ("train without ...").

    Returns:
        ``cannot reach the Hub at ...`` or ``<verb>ing to <url> failed (HTTP <status>): <reason>``.

    Example:
        >>> hub_failure(TimeoutError("timed out"), verb="push", repo_id="a/b", url="http://hub/a/b",
        ...             endpoint="http://hub", token=None, token_sources="HF_TOKEN", alternative="push later")
        'cannot reach the Hub at http://hub to push a/b (timed out): check the connection or HF_ENDPOINT, or push
        later'
    """
    status = hub_status(err)
    reason = _reason(err)
    if status is None:
        message = (f"cannot reach the Hub at {endpoint} to {verb} {repo_id} ({reason}): "
                   "check the connection or HF_ENDPOINT")
        if alternative:
            message += f", or {alternative}"
    else:
        message = f"{verb}ing to {url} failed (HTTP {status}): {reason}"
        if status in (401, 403):
            message += f"; check that the token ({token_sources}) has write access"
    return message.replace(token, "***") if token and token_leaks(message, token) else message


def _reason(err: BaseException) -> str:
    """The error's first line, plus the server's own explanation when it sent one, on one line."""
    text = str(err)
    first = text.splitlines()[0] if text.strip() else type(err).__name__
    server = " ".join((getattr(err, "server_message", None) or "").split())
    return f"{first}: {server}" if server and server not in first else first
