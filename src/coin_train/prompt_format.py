"""The one prompt format shared by training and evaluation.

The reference CoIN code trained with one prompt layout and evaluated with another (flaw 5 in
``method.md``). Here a single :class:`PromptFormat` renders every prompt, it is saved next to every
checkpoint (``coin_prompt.json``), and evaluation loads it back from the model folder.

Two modes:

* template (default): ``<prompt>\\n\\n### Response:\\n<target>``, the Alpaca-style layout of the paper.
* chat: the tokenizer's own chat template, the instruction as the user turn, the target as the
  assistant turn.

Prompt and target are tokenized separately and concatenated, so the boundary between them (and
therefore the label mask) is exact, and generation at evaluation starts from exactly the tokens the
model saw before its answer during training.

Example:
    >>> fmt = PromptFormat()
    >>> fmt.render_prompt("Is the sky blue?")
    'Is the sky blue?\\n\\n### Response:\\n'
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

PROMPT_SLOT = "{prompt}"
TARGET_SLOT = "{target}"
DEFAULT_TEMPLATE = "{prompt}\n\n### Response:\n{target}"
PROMPT_FORMAT_FILE = "coin_prompt.json"


@dataclass(frozen=True)
class PromptFormat:
    """How an (instruction, target) pair becomes token ids.

    Args:
        template: text layout with exactly one ``{prompt}`` slot and ending in ``{target}``. Slots are
            filled by plain replacement, so braces inside instructions are safe.
        chat_template: use the tokenizer's chat template instead of ``template``.
        system_prompt: optional system turn (chat mode only).
        add_eos: end every target with the tokenizer's EOS token so the model learns to stop.

    Example:
        >>> PromptFormat(template="Q: {prompt}\\nA: {target}").render_prompt("2+2?")
        'Q: 2+2?\\nA: '
    """

    template: str = DEFAULT_TEMPLATE
    chat_template: bool = False
    system_prompt: str | None = None
    add_eos: bool = True

    def __post_init__(self) -> None:
        if self.template.count(PROMPT_SLOT) != 1:
            raise ValueError(f"prompt template must contain {PROMPT_SLOT} exactly once: {self.template!r}")
        if not self.template.endswith(TARGET_SLOT) or self.template.count(TARGET_SLOT) != 1:
            raise ValueError(f"prompt template must end with {TARGET_SLOT} (once): {self.template!r}")
        if self.system_prompt is not None and not self.chat_template:
            raise ValueError("system_prompt is only used with chat_template=True")

    # --- text ---------------------------------------------------------------
    def render_prompt(self, instruction: str, tokenizer=None) -> str:
        """The text the model reads before its answer.

        Args:
            instruction: the instruction with its input (a dataset's ``original_instruction``, ...).
            tokenizer: required in chat mode (its chat template renders the turns).

        Returns:
            The prompt text, ending where the answer starts.
        """
        if not self.chat_template:
            return self.template[: -len(TARGET_SLOT)].replace(PROMPT_SLOT, instruction)
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("chat_template=True needs a tokenizer that has a chat template")
        messages = [{"role": "user", "content": instruction}]
        if self.system_prompt is not None:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    # --- tokens -------------------------------------------------------------
    def encode_prompt(self, tokenizer, instruction: str) -> list[int]:
        """Token ids of the prompt (with the tokenizer's BOS in template mode; chat templates carry their own)."""
        return self.encode_prompts(tokenizer, [instruction])[0]

    def encode_target(self, tokenizer, target: str) -> list[int]:
        """Token ids of the answer, followed by EOS when ``add_eos``."""
        return self.encode_targets(tokenizer, [target])[0]

    def encode_prompts(self, tokenizer, instructions: list[str]) -> list[list[int]]:
        """Batched :meth:`encode_prompt` (one fast-tokenizer call for the whole list)."""
        if not instructions:
            return []
        texts = [self.render_prompt(text, tokenizer) for text in instructions]
        return tokenizer(texts, add_special_tokens=not self.chat_template)["input_ids"]

    def encode_targets(self, tokenizer, targets: list[str]) -> list[list[int]]:
        """Batched :meth:`encode_target`."""
        ids = tokenizer(list(targets), add_special_tokens=False)["input_ids"] if targets else []
        if not self.add_eos:
            return ids
        if tokenizer.eos_token_id is None:
            raise ValueError("add_eos=True but the tokenizer has no eos_token; set one or add_eos=False")
        return [row + [tokenizer.eos_token_id] for row in ids]

    def encode(self, tokenizer, instruction: str, target: str) -> tuple[list[int], int]:
        """Prompt + target ids and the prompt length (the number of positions masked out of the labels).

        Example:
            >>> ids, n_prompt = PromptFormat().encode(tok, "Is it spam?", "no")  # doctest: +SKIP
            >>> labels = [-100] * n_prompt + ids[n_prompt:]  # doctest: +SKIP
        """
        prompt = self.encode_prompt(tokenizer, instruction)
        return prompt + self.encode_target(tokenizer, target), len(prompt)

    # --- persistence ----------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``coin_prompt.json`` into ``directory`` (next to the model weights)."""
        path = Path(directory) / PROMPT_FORMAT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path, default: PromptFormat | None = None) -> PromptFormat:
        """Read the format saved with a model; ``default`` (or the default format) when there is none.

        Example:
            >>> PromptFormat.load("/nonexistent") == PromptFormat()
            True
        """
        path = Path(directory) / PROMPT_FORMAT_FILE
        if not path.is_file():
            return default if default is not None else cls()
        return cls(**json.loads(path.read_text(encoding="utf-8")))
