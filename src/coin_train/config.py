"""Configuration of a CoIN training run: model, LoRA, data and the training/loss settings.

    coin-train train --model HuggingFaceTB/SmolLM2-135M-Instruct --dataset coin-flan-paraphrased \\
        --output-dir out/coin --lora

Every field below is also a command-line option (``--temperature 0.1``) and a key of a ``--config``
YAML file; ``coin-train train --help-all`` lists them all with their help.

Example:
    >>> cfg = CoinConfig(output_dir="out", temperature=0.1, balance="fixed", contrastive_weight=1.0)
    >>> cfg.temperature, cfg.remove_unused_columns
    (0.1, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from transformers import TrainingArguments

from coin_train.prompt_format import DEFAULT_TEMPLATE, PromptFormat

DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


@dataclass
class ModelArguments:
    """Which causal LM to train and how to load it.

    Example:
        >>> ModelArguments(model_name_or_path="HuggingFaceTB/SmolLM2-135M-Instruct").dtype
        'float32'
    """

    # --- model ---------------------------------------------------------------
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Hub id or local folder of any AutoModelForCausalLM, or a saved PEFT adapter folder "
                          "(its base model is loaded and the adapter continues training). Required."},
    )
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = field(
        default="float32",
        metadata={"help": "Dtype of the loaded weights. float32 keeps full-precision master weights (use --bf16 "
                          "for mixed precision); bfloat16 halves memory, typical with --lora on GPUs."},
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "Attention kernel: 'eager', 'sdpa', 'flash_attention_2' ... (model default)."}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow model code from the Hub repository (only for models you trust)."}
    )

    def __post_init__(self) -> None:
        if not self.model_name_or_path:
            raise ValueError("model_name_or_path is required (--model PATH_OR_ID)")


@dataclass
class LoraArguments:
    """Optional LoRA adapters through peft (the paper: r=16, alpha=16, dropout 0.05 on q/k/v/o).

    Example:
        >>> LoraArguments(use_lora=True).lora_target_modules
        ['q_proj', 'k_proj', 'v_proj', 'o_proj']
    """

    # --- LoRA ------------------------------------------------------------------
    use_lora: bool = field(
        default=False, metadata={"help": "Train LoRA adapters instead of all weights (CLI: --lora)."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: list(DEFAULT_LORA_TARGETS),
        metadata={"help": "Module names that get adapters, or 'all-linear'."},
    )
    lora_fuse_dropout: bool = field(
        default=True,
        metadata={"help": "Fuse each adapter's dropout into its A projection, so that training keeps the layer "
                          "input and a 1-byte mask instead of a dropped-out copy (same computation; on SmolLM2 "
                          "with q/k/v/o adapters a fifth less step memory). --no_lora_fuse_dropout keeps peft's own."},
    )

    def __post_init__(self) -> None:
        if self.lora_r < 1:
            raise ValueError(f"lora_r must be >= 1, got {self.lora_r}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_target_modules:
            raise ValueError("lora_target_modules is empty")


@dataclass
class DataArguments:
    """Which dataset to read and how rows become token sequences.

    Example:
        >>> DataArguments(dataset_name_or_path="coin-flan-paraphrased").prompt_format().render_prompt("Hi")
        'Hi\\n\\n### Response:\\n'
    """

    # --- dataset ---------------------------------------------------------------
    dataset_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Local folder (e.g. coin-flan-paraphrased, as written by `coin-data build`) or Hub id, "
                          "read with datasets.load_dataset. Required."},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset config name (default: 'default')."})
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    eval_split: str | None = field(
        default="validation",
        metadata={"help": "Split for evaluation when eval_strategy is not 'no' (skipped if the dataset lacks it)."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N evaluation rows."})
    num_proc: int | None = field(default=None, metadata={"help": "Processes for tokenization (datasets.map)."})

    # --- sequences ---------------------------------------------------------------
    max_length: int = field(
        default=256,
        metadata={"help": "Max tokens per view (prompt + target). The prompt is kept whole and the target cut "
                          "to fit; rows whose prompt leaves no room for the target are dropped and counted."},
    )
    prompt_template: str = field(
        default=DEFAULT_TEMPLATE,
        metadata={"help": "Prompt layout with one {prompt} slot, ending in {target}. Shared with evaluation."},
    )
    chat_template: bool = field(
        default=False, metadata={"help": "Use the tokenizer's chat template instead of prompt_template."}
    )
    system_prompt: str | None = field(default=None, metadata={"help": "System turn in chat-template mode."})

    def __post_init__(self) -> None:
        if not self.dataset_name_or_path:
            raise ValueError("dataset_name_or_path is required (--dataset PATH_OR_ID)")
        if self.max_length < 2:
            raise ValueError(f"max_length must be >= 2 (a prompt token and a target token), got {self.max_length}")
        self.prompt_format()  # validates the template

    def prompt_format(self) -> PromptFormat:
        """The :class:`PromptFormat` these settings describe."""
        return PromptFormat(template=self.prompt_template, chat_template=self.chat_template,
                            system_prompt=self.system_prompt)


@dataclass
class CoinConfig(TrainingArguments):
    """``TrainingArguments`` plus the CoIN objective.

    Loss = L_gen + L_c with L_gen the token cross-entropy of the original and the paraphrased view
    (each averaged over its answer tokens, then summed) and L_c = w * InfoNCE(original, paraphrase).
    With ``balance="cap"`` (the paper) L_c is rescaled to L_gen whenever it is larger.

    Example:
        >>> CoinConfig(output_dir="out", contrastive=False).contrastive  # the paper's baseline
        False
    """

    # --- CoIN objective ------------------------------------------------------------
    contrastive: bool = field(
        default=True,
        metadata={"help": "Add the contrastive term. --no-contrastive gives the paper's baseline (continual "
                          "instruction tuning on the same original + paraphrase data)."},
    )
    temperature: float = field(default=0.05, metadata={"help": "InfoNCE temperature tau (cosine / tau)."})
    contrastive_weight: float = field(default=1000.0, metadata={"help": "Weight w of the contrastive term."})
    balance: Literal["cap", "fixed"] = field(
        default="cap",
        metadata={"help": "'cap' (the paper): w * L_ctr is rescaled to L_gen when larger (value capped, gradient "
                          "scaled); 'fixed': w * L_ctr as is."},
    )
    pooling: Literal["last", "mean"] = field(
        default="last",
        metadata={"help": "Sequence vector from the final layer: 'last' real token (the paper) or masked 'mean'."},
    )
    hard_negatives: bool = field(
        default=True,
        metadata={"help": "Add the dataset's explicit hard negatives as extra InfoNCE candidates."},
    )
    negative_gen_loss: bool = field(
        default=False, metadata={"help": "Also train generation on the hard-negative view (its own target)."}
    )
    gather_across_devices: bool = field(
        default=False,
        metadata={"help": "Under multi-process training, use the other processes' views as extra candidates."},
    )
    pack_views: bool = field(
        default=True,
        metadata={"help": "Lay the views of a batch end to end in rows of up to 1.5x the longest view (each view "
                          "attends only to itself) instead of padding each one: the same loss with less memory and "
                          "time. Checked on the first batch; a model that cannot keep packed views apart falls "
                          "back to padding with a warning. --no_pack_views always pads."},
    )

    # --- defaults that differ from TrainingArguments ----------------------------------
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate (the paper: 1e-4 with LoRA)."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs over the training split."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N optimizer steps."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Must stay False: the CoIN collator reads its own view columns."}
    )
    label_names: list[str] | None = field(
        default_factory=lambda: ["labels"], metadata={"help": "Batch keys holding labels."}
    )

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.contrastive_weight < 0:
            raise ValueError(f"contrastive_weight must be >= 0, got {self.contrastive_weight}")
        if self.balance not in ("cap", "fixed"):
            raise ValueError(f"balance must be 'cap' or 'fixed', got {self.balance!r}")
        if self.pooling not in ("last", "mean"):
            raise ValueError(f"pooling must be 'last' or 'mean', got {self.pooling!r}")
        if self.remove_unused_columns:
            raise ValueError("remove_unused_columns must be False for CoIN (the collator needs its view columns)")
        super().__post_init__()

    @property
    def uses_negatives(self) -> bool:
        """Whether the data step has to tokenize the hard-negative view at all."""
        return (self.contrastive and self.hard_negatives) or self.negative_gen_loss
