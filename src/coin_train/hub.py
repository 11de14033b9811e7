"""``--push_to_hub`` for trained models: checked before any loading, private by default, clear failures.

The upload itself is the stock ``transformers.Trainer`` one (``push_to_hub``, ``hub_model_id``,
``hub_strategy``, ``hub_token``, ``hub_private_repo`` mean what they mean there; the card written by
:mod:`coin_train.card` goes up with the model). This module adds what a first run needs:

* :func:`prepare_push`, before the model and data are loaded: a token must exist, the repo id must be
  valid, the Hub must answer; the repo is created **private** unless ``--hub_private_repo false`` (as
  ``coin-data publish``), and an existing public repo is not written to unless asked the same way.
* :func:`push_failure`: any Hub error as one line that names the repo and what to do, never the token.

Example:
    >>> push_target(CoinConfig(output_dir="out/coin"))  # doctest: +SKIP
    'coin'
"""

from __future__ import annotations

from pathlib import Path

from coin_data.hub.errors import hub_errors, hub_failure
from coin_data.hub.publish import PublishError, check_repo_id


class PushError(RuntimeError):
    """``--push_to_hub`` cannot go ahead, or the upload failed (the message says what to do)."""


def push_target(config) -> str:
    """The repo the Trainer pushes to: ``hub_model_id``, else the output folder's name (Trainer's rule).

    Example:
        >>> from types import SimpleNamespace
        >>> push_target(SimpleNamespace(hub_model_id=None, output_dir="runs/coin-lora"))
        'coin-lora'
    """
    return config.hub_model_id or Path(config.output_dir).absolute().name



def prepare_push(config) -> str | None:
    """Check and create the push target before training starts; ``None`` without ``push_to_hub``.

    Args:
        config: the run's :class:`~coin_train.config.CoinConfig`.

    Returns:
        The full repo id (``OWNER/NAME``) the model will be pushed to.

    Raises:
        PushError: no token, an invalid repo id, an unreachable Hub, a refused request, or an existing public
            repo while ``hub_private_repo`` is true. One line, never containing the token.
    """
    if not config.push_to_hub:
        return None
    from huggingface_hub import HfApi, get_token

    target = push_target(config)
    if "/" in target:
        try:
            check_repo_id(target)
        except PublishError as err:
            raise PushError(f"--hub_model_id: {err}") from None
    token = config.hub_token or get_token()
    if not token:
        raise PushError("--push_to_hub needs a Hugging Face token with write access: set HF_TOKEN, run "
                        "`hf auth login`, or pass --hub_token")
    private = config.hub_private_repo is not False
    api = HfApi(token=token)
    try:
        repo_id = api.create_repo(target, private=private, exist_ok=True).repo_id
        is_private = bool(api.model_info(repo_id).private)
    except hub_errors() as err:
        raise PushError(push_failure(err, target, api.endpoint, token)) from None
    if private and not is_private:
        raise PushError(f"{api.endpoint}/{repo_id} already exists and is public; nothing was trained or uploaded. "
                        "Pass --hub_private_repo false to push to it, or make it private on the Hub first.")
    return repo_id


def upload_failure(err: BaseException, config, repo_id: str | None) -> PushError:
    """The :class:`PushError` for an upload that failed after training (the model is saved locally)."""
    from huggingface_hub import constants, get_token

    return PushError(push_failure(err, repo_id or push_target(config), constants.ENDPOINT,
                                  config.hub_token or get_token(), saved_in=config.output_dir))


def push_failure(err: BaseException, repo_id: str, endpoint: str, token: str | None,
                 saved_in: str | None = None) -> str:  # fmt: skip
    """One line for a failed Hub request (:func:`coin_data.hub.errors.hub_failure`), and where the model is.

    Args:
        err: the exception raised by ``huggingface_hub``.
        repo_id: the target repo.
        endpoint: the Hub address used.
        token: the token used (removed from the message should the error quote it).
        saved_in: the local folder that holds the model when only the upload failed.

    Example:
        >>> push_failure(ConnectionError("refused"), "alice/coin", "http://127.0.0.1:9", None)
        'cannot reach the Hub at http://127.0.0.1:9 to push alice/coin (refused): check the connection or HF_ENDPOINT, or train without --push_to_hub'
    """
    url = f"{endpoint.rstrip('/')}/{repo_id}"
    message = hub_failure(err, verb="push", repo_id=repo_id, url=url, endpoint=endpoint, token=token,
                          token_sources="HF_TOKEN, `hf auth login` or --hub_token",
                          alternative="" if saved_in else "train without --push_to_hub")
    if saved_in:
        message += f"; the model is saved in {saved_in}: upload it later with `hf upload {repo_id} {saved_in}`"
    return message
