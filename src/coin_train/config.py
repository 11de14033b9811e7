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

import logging
import os
from dataclasses import dataclass, field
from typing import Literal

from transformers import TrainingArguments

from coin_train.prompt_format import DEFAULT_TEMPLATE, PromptFormat

DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]

logger = logging.getLogger(__name__)


def launched_without_accelerator() -> bool:
    """Whether this is one of several launched processes (``WORLD_SIZE`` > 1) on a machine with no GPU
    or other accelerator, where the processes can only train on CPU.

    Example:
        >>> launched_without_accelerator()  # one process (no WORLD_SIZE)
        False
    """
    import torch

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if hasattr(torch, "accelerator"):  # torch >= 2.6
        return not torch.accelerator.is_available()
    return not torch.cuda.is_available()


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

    # --- which weights train ------------------------------------------------------------
    train_top_layers: int | None = field(
        default=None,
        metadata={"help": "Train only the top N decoder layers (LoRA adapters on them only, or their full weights "
                          "plus the final norm and an untied head); the embeddings and the layers below run "
                          "without gradients, so they keep no activations and the backward pass stops early "
                          "(docs/training.md). Default: all layers."},
    )

    def __post_init__(self) -> None:
        if not self.model_name_or_path:
            raise ValueError("model_name_or_path is required (--model PATH_OR_ID)")
        if self.train_top_layers is not None and self.train_top_layers < 1:
            raise ValueError(f"train_top_layers must be >= 1, got {self.train_top_layers}")


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
        if self.lora_alpha <= 0:
            raise ValueError(f"lora_alpha must be > 0, got {self.lora_alpha}")
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
    add_eos: bool = field(
        default=True,
        metadata={"help": "End every target with the tokenizer's EOS token, so the model learns to stop and 'last' "
                          "pooling reads the EOS state. --no_add_eos (the reference code) pools the last answer token."},
    )
    pair_negatives: bool = field(
        default=False,
        metadata={"help": "Lay the training rows out as (anchor, hard negative) pairs, each row followed by the row "
                          "of its negative instance, as the reference code's data file does; with a batch of 2 and "
                          "sequential sampling the other row of a batch is each anchor's in-batch negative. Rows "
                          "without an available partner are left out (counted in a warning)."},
    )

    def __post_init__(self) -> None:
        if not self.dataset_name_or_path:
            raise ValueError("dataset_name_or_path is required (--dataset PATH_OR_ID)")
        if self.max_length < 2:
            raise ValueError(f"max_length must be >= 2 (a prompt token and a target token), got {self.max_length}")
        for name in ("max_train_samples", "max_eval_samples", "num_proc"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        self.prompt_format()  # validates the template

    def prompt_format(self) -> PromptFormat:
        """The :class:`PromptFormat` these settings describe."""
        return PromptFormat(template=self.prompt_template, chat_template=self.chat_template,
                            system_prompt=self.system_prompt, add_eos=self.add_eos)


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

    # --- output folder ------------------------------------------------------------------
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Train into an --output-dir that already holds files: the previous run there (its "
                          "checkpoints and final model) is deleted first. Without it a non-empty folder is "
                          "refused, unless --resume-from-checkpoint continues the run it holds."},
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
    hub_private_repo: bool | None = field(
        default=True,
        metadata={"help": "With --push_to_hub: create the model repo private (the default, as coin-data publish), "
                          "and refuse to push into an existing public repo; --hub_private_repo false for public."},
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
        if not self.use_cpu and launched_without_accelerator():
            # accelerate's torchrun launchers (multi-GPU, FSDP, DeepSpeed configs) do not pass a config's
            # `use_cpu: true` on to the processes. Without it, transformers asks accelerate for a GPU
            # backend; accelerate finds none, records one non-distributed process, yet initializes the
            # process group: every process then trains the whole run on its own.
            logger.info("%s processes and no accelerator: training on CPU (gloo)", os.environ["WORLD_SIZE"])
            self.use_cpu = True
        check_training_ranges(self)
        super().__post_init__()
        check_report_to(self.report_to)

    def __getstate__(self) -> dict:
        """Pickled state without secrets: the Trainer saves ``training_args.bin`` in every checkpoint (and
        uploads it with ``--push_to_hub``); the live object keeps its token."""
        state = dict(self.__dict__)
        for name in [key for key in state if key.endswith("_token") and state[key] is not None]:
            state[name] = None
        return state

    @property
    def uses_negatives(self) -> bool:
        """Whether the data step has to tokenize the hard-negative view at all."""
        return (self.contrastive and self.hard_negatives) or self.negative_gen_loss


# --- presets ----------------------------------------------------------------------------
# coin-train train --preset reference --model smollm2 --dataset coin-flan-paraphrased --output-dir out/ref
PRESETS: dict[str, dict] = {
    # The reference code's setup (luka-group/CoIN, run_contrastive_llama.py and its run script): no EOS, so
    # 'last' pooling reads the last answer token; (anchor, hard negative) rows adjacent and unshuffled in
    # micro-batches of 2, each row an anchor whose in-batch negative is the other; no extra negative
    # columns; 64 rows per optimizer step; LoRA r=16, alpha=16, dropout 0.05 on q/k/v/o; lr 1e-4 with 10%
    # warmup; one epoch; 256 tokens; w=1000 capped by min(w, L_gen / c); tau=0.05. (The reference loads
    # LLaMA-7B in 8 bit with fp16 on a GPU; add --bf16/--fp16 there, nothing here assumes a GPU.)
    "reference": {
        "add_eos": False, "pooling": "last", "pair_negatives": True, "train_sampling_strategy": "sequential",
        "hard_negatives": False, "negative_gen_loss": False,
        "per_device_train_batch_size": 2, "gradient_accumulation_steps": 32,
        "learning_rate": 1e-4, "warmup_steps": 0.1, "num_train_epochs": 1.0, "max_length": 256,
        "temperature": 0.05, "contrastive_weight": 1000.0, "balance": "cap",
        "use_lora": True, "lora_r": 16, "lora_alpha": 16, "lora_dropout": 0.05,
        "lora_target_modules": list(DEFAULT_LORA_TARGETS), "optim": "adamw_torch", "seed": 42, "logging_steps": 1,
    },
}


def preset_settings(name: str) -> dict:
    """The settings a named preset gives (a copy); any of them can still be overridden.

    Example:
        >>> preset_settings("reference")["per_device_train_batch_size"]
        2
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(sorted(PRESETS))}")
    return {key: (list(value) if isinstance(value, list) else value) for key, value in PRESETS[name].items()}


def check_pairing(data_args: DataArguments, config: CoinConfig) -> None:
    """``pair_negatives`` needs pairs that stay together in one micro-batch: an even batch and sequential order.

    Example:
        >>> check_pairing(DataArguments("d"), CoinConfig(output_dir="o"))  # pairing off: nothing to check
    """
    if not data_args.pair_negatives:
        return
    if config.per_device_train_batch_size % 2:
        raise ValueError("pair_negatives needs an even per_device_train_batch_size (pairs must share a batch), "
                         f"got {config.per_device_train_batch_size}")
    if config.train_sampling_strategy != "sequential":
        raise ValueError("pair_negatives needs --train_sampling_strategy sequential (shuffling would split the "
                         f"pairs), got {config.train_sampling_strategy!r}")


# --- checks of TrainingArguments fields (out-of-range values are refused, not silently adjusted) ----------
_AT_LEAST_ONE = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps")
_POSITIVE = ("logging_steps", "save_steps", "eval_steps")
_NOT_NEGATIVE = ("learning_rate", "weight_decay", "max_grad_norm", "warmup_steps")

# report_to integration -> the extra of this project that installs it (where there is one)
REPORT_TO_EXTRAS = {"tensorboard": "tensorboard"}
# report_to integration -> packages that provide it (any one of them)
REPORT_TO_PACKAGES = {
    "tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",),
    "comet_ml": ("comet_ml",), "clearml": ("clearml",), "trackio": ("trackio",), "swanlab": ("swanlab",),
    "dvclive": ("dvclive",), "neptune": ("neptune",), "codecarbon": ("codecarbon",), "azure_ml": ("azureml",),
    "flyte": ("flytekit",), "dagshub": ("dagshub",),
}


def check_training_ranges(args) -> None:
    """Refuse out-of-range ``TrainingArguments`` values (``--max-steps 0`` would otherwise train a step).

    Example:
        >>> try:
        ...     CoinConfig(output_dir="out", max_steps=0)
        ... except ValueError as err:
        ...     print(err)
        max_steps must be >= 1 (or -1: train num_train_epochs), got 0
    """
    if args.max_steps == 0 or args.max_steps < -1:
        raise ValueError(f"max_steps must be >= 1 (or -1: train num_train_epochs), got {args.max_steps}")
    if args.max_steps == -1 and args.num_train_epochs <= 0:
        raise ValueError(f"num_train_epochs must be > 0, got {args.num_train_epochs}")
    for name in _AT_LEAST_ONE:
        if getattr(args, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(args, name)}")
    for name in _POSITIVE:
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    for name in _NOT_NEGATIVE:
        value = getattr(args, name, None)
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")


def _installed(package: str) -> bool:
    import importlib.util
    import sys

    if package in sys.modules:  # None there means "imports of it fail"
        return sys.modules[package] is not None
    return importlib.util.find_spec(package) is not None


def check_report_to(report_to: list[str]) -> None:
    """Each ``--report_to`` integration needs its package: say which, before any model is loaded.

    Example:
        >>> check_report_to([])
    """
    for name in report_to or []:
        packages = REPORT_TO_PACKAGES.get(name)
        if packages and not any(_installed(package) for package in packages):
            extra = REPORT_TO_EXTRAS.get(name)
            install = f"pip install 'coin-toolkit[{extra}]'" if extra else f"pip install {packages[0]}"
            raise ValueError(f"--report_to {name} needs the {packages[0]} package: {install} "
                             "(or choose another --report_to, or none)")
