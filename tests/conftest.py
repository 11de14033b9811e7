"""Session fixtures shared by all test packages.

Sections: tiny tokenizer and causal LM (random init, offline, fast on 2 CPU cores); a small synthetic
dataset in the published Hub layout.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from coin_data import schema
from coin_data.verify.embedding import passive_thread_wait

# Before any test imports torch: idle OpenMP threads sleep instead of spinning on the shared cores (the
# same numbers, several times faster under load; see passive_thread_wait).
passive_thread_wait()

# --- synthetic CoIN rows -------------------------------------------------------------------
_POSITIVE = ["great", "lovely", "superb", "wonderful", "excellent", "delightful"]
_NEGATIVE = ["awful", "boring", "terrible", "dreadful", "poor", "dull"]
_THINGS = ["film", "meal", "book", "hotel", "song", "game", "phone", "show"]
_TEMPLATES = {  # template id -> (original template, its two paraphrases)
    "t0": ("Review: {text}\nIs this review positive or negative?",
           ("Decide if the following review is positive or negative.\n{text}",
            "{text}\nWas the reviewer happy (positive) or unhappy (negative)?")),
    "t1": ("{text}\nWhat is the sentiment of this review? Answer positive or negative.",
           ("Here is a review: {text}\nIs its sentiment positive or negative?",
            "Classify the sentiment of the review as positive or negative: {text}")),
}


def _coin_rows(n_instances: int, seed: int = 0, split: str = "train") -> list[dict]:
    """Rows with every published column: 2 paraphrases per instance, a same-template hard negative on most.

    Each instance appears in two rows (paraphrase 0 and 1), so batches contain same-instance candidates.
    Every fifth instance has no negative (``negative_source`` = ``"none:no_candidate"``).
    """
    rng = random.Random(seed)
    instances = []
    for index in range(n_instances):
        label = "positive" if index % 2 == 0 else "negative"
        words = _POSITIVE if label == "positive" else _NEGATIVE
        text = f"The {rng.choice(_THINGS)} was {rng.choice(words)} and {rng.choice(words)}."
        instances.append({"id": f"{split}-{index}", "text": text, "label": label, "template": f"t{index // 2 % 2}"})
    rows = []
    for index, inst in enumerate(instances):
        original, paraphrases = _TEMPLATES[inst["template"]]
        others = [o for o in instances if o["template"] == inst["template"] and o["label"] != inst["label"]]
        negative = None if index % 5 == 4 or not others else others[(index * 7) % len(others)]
        for paraphrase_id, paraphrase in enumerate(paraphrases):
            rows.append({name: None for name in schema.COLUMNS} | {  # columns not set here stay null
                schema.ID: f"{inst['id']}-{paraphrase_id}",
                schema.TASK: "sentiment",
                schema.TEMPLATE_ID: inst["template"],
                schema.PARAPHRASE_ID: f"p{paraphrase_id}",
                schema.INSTANCE_ID: inst["id"],
                schema.ORIGINAL: original.replace("{text}", inst["text"]),
                schema.PARAPHRASED: paraphrase.replace("{text}", inst["text"]),
                schema.TARGETS: inst["label"],
                schema.NEGATIVE: None if negative is None else original.replace("{text}", negative["text"]),
                schema.NEGATIVE_TARGETS: None if negative is None else negative["label"],
                schema.NEGATIVE_SOURCE: "none:no_candidate" if negative is None else "same_template",
                schema.FIELDS: json.dumps({"text": inst["text"]}),
                schema.ORIGINAL_TEMPLATE: original,
                schema.PARAPHRASED_TEMPLATE: paraphrase,
                schema.SIMILARITY: 0.9,
                schema.NEGATIVE_SIMILARITY: None if negative is None else 0.8,
                schema.PARAPHRASE_SOURCE: "test",
            })
    return rows


@pytest.fixture(scope="session")
def make_coin_rows():
    """Factory ``make_coin_rows(n_instances, seed=0, split="train") -> list[dict]`` (2 rows per instance)."""
    return _coin_rows


@pytest.fixture(scope="session")
def coin_rows() -> list[dict]:
    """24 training rows (12 instances x 2 paraphrases)."""
    return _coin_rows(12)


@pytest.fixture(scope="session")
def uneven_features(coin_rows, tiny_tokenizer) -> list[dict]:
    """The first 12 rows encoded for training (tiny tokenizer), the prompt of every other row cut to a
    quarter: views of very different lengths, as on real data, so that packing them saves positions."""
    import datasets

    from coin_train.data import encode_dataset, ids_column, prompt_length_column

    encoded = encode_dataset(datasets.Dataset.from_list(coin_rows[:12], features=schema.FEATURES),
                             tiny_tokenizer, max_length=64)
    features = []
    for i in range(len(encoded)):
        feature = dict(encoded[i])
        for view in ("original", "paraphrase", "negative"):
            ids, n_prompt = feature[ids_column(view)], feature[prompt_length_column(view)]
            if i % 2 and ids:
                cut = n_prompt - max(1, n_prompt // 4)
                feature[ids_column(view)], feature[prompt_length_column(view)] = ids[cut:], n_prompt - cut
        features.append(feature)
    return features


@pytest.fixture(scope="session")
def coin_dataset_dir(tmp_path_factory) -> Path:
    """A dataset folder in the published layout: ``data/{train,validation}-00000-of-00001.parquet``."""
    import datasets

    folder = tmp_path_factory.mktemp("hub") / "coin-flan-paraphrased"
    (folder / "data").mkdir(parents=True)
    for split, n, seed in (("train", 16, 0), ("validation", 4, 1)):
        rows = _coin_rows(n, seed=seed, split=split)
        datasets.Dataset.from_list(rows, features=schema.FEATURES).to_parquet(
            str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return folder


# --- tiny tokenizer and causal LM ----------------------------------------------------------
TINY_SPECIAL_TOKENS = ["<|pad|>", "<|eos|>", "<|user|>", "<|assistant|>"]
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}<|user|>{{ m['content'] }}\n"
    "{% elif m['role'] == 'system' %}{{ m['content'] }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A byte-level BPE (vocab ~1k) trained in-process, with pad/eos tokens and a small chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [row[key] or "" for seed in range(4) for row in _coin_rows(16, seed=seed)
              for key in (schema.ORIGINAL, schema.PARAPHRASED, schema.TARGETS)]
    corpus += ["### Response:", "The quick brown fox jumps over the lazy dog."] * 4
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=TINY_SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<|pad|>", eos_token="<|eos|>")
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    return tokenizer


@pytest.fixture(scope="session")
def make_tiny_model(tiny_tokenizer):
    """Factory: a fresh random-init Llama causal LM (hidden 64, 2 layers), deterministic per ``seed``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    def build(seed: int = 0, **overrides):
        config = LlamaConfig(
            vocab_size=len(tiny_tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
            pad_token_id=tiny_tokenizer.pad_token_id, eos_token_id=tiny_tokenizer.eos_token_id,
            bos_token_id=None, tie_word_embeddings=False, **overrides)
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)

    return build


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, make_tiny_model, tiny_tokenizer) -> Path:
    """The tiny model and tokenizer saved with ``save_pretrained`` (a ``--model`` folder for CLI tests)."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    make_tiny_model(seed=0).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def torch_single_thread():
    """Run a test with one torch thread: tiny models gain nothing from more, and on a busy 2-core machine
    two OpenMP threads spin against each other (a 0.05 s step becomes seconds)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- tolerances ----------------------------------------------------------------------------
def _assert_close_to_rounding(actual, expected, *, dtype=None, ulps: int = 64, what: str = "") -> None:
    """Assert that two results of one computation, laid out or ordered differently, agree to rounding.

    The tolerance is derived rather than picked: ``ulps`` x the machine epsilon of ``dtype`` (the lowest
    precision the computation runs in; by default ``expected``'s own, at least float32 since Llama's norms
    compute in float32) x the largest magnitude in ``expected``. Summation order changes results at that
    scale on one CPU and not another; a real difference (a wrong mask, position or token) shows at the
    scale of the values themselves, thousands of times above it.
    """
    import torch

    actual, expected = torch.as_tensor(actual), torch.as_tensor(expected)
    dtype = dtype or torch.promote_types(expected.dtype, torch.float32)
    if dtype == torch.float64:
        dtype = torch.float32  # the models' RMSNorm runs in float32 even for a float64 model
    scale = expected.abs().max().item() if expected.numel() else 0.0
    tolerance = ulps * torch.finfo(dtype).eps * max(scale, 1e-12)
    worst = (actual.double() - expected.double()).abs().max().item() if expected.numel() else 0.0
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    assert worst <= tolerance, f"{what}: differs by {worst:.3g}, tolerance {tolerance:.3g} (max |value| {scale:.3g})"


@pytest.fixture(scope="session")
def close_to_rounding():
    """The assertion above, for tests that compare two layouts of one computation."""
    return _assert_close_to_rounding
