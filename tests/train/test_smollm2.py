"""A few LoRA steps of CoIN on the bundled SmolLM2-135M-Instruct (slow: run with ``pytest -m slow``)."""

import datasets
import pytest
import torch

from coin_data import schema
from coin_train.config import CoinConfig, LoraArguments, ModelArguments
from coin_train.data import CoinCollator, encode_dataset
from coin_train.losses import CoinLoss
from coin_train.modeling import load_model, load_tokenizer, smollm2_path
from coin_train.prompt_format import PromptFormat
from coin_train.trainer import CoinTrainer

pytestmark = pytest.mark.slow


def test_lora_steps_on_smollm2_lower_the_loss_and_leave_the_base_frozen(tmp_path, make_coin_rows):
    path = smollm2_path()
    assert (path / "config.json").is_file() and smollm2_path() == path  # converted once, then cached
    tokenizer = load_tokenizer(path)
    fmt = PromptFormat(chat_template=True)
    rows = datasets.Dataset.from_list(make_coin_rows(8), features=schema.FEATURES)
    encoded = encode_dataset(rows, tokenizer, fmt, max_length=128)
    model = load_model(ModelArguments(model_name_or_path=str(path)),
                       LoraArguments(use_lora=True, lora_r=8, lora_alpha=16, lora_target_modules=["q_proj", "v_proj"]))
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    batch = CoinCollator(tokenizer.pad_token_id)([encoded[i] for i in range(4)])

    def fixed_loss():
        model.eval()
        with torch.no_grad():
            out = CoinLoss()(model, batch)
        model.train()
        return out

    before = fixed_loss()
    config = CoinConfig(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=4,
                        learning_rate=2e-3, logging_steps=1, save_strategy="no", use_cpu=True, disable_tqdm=True)
    CoinTrainer(model=model, args=config, train_dataset=encoded, processing_class=tokenizer,
                prompt_format=fmt).train()
    after = fixed_loss()
    assert after.gen_loss < before.gen_loss
    for name, p in model.named_parameters():
        if "lora_" not in name:
            assert torch.equal(p, weights[name]), f"frozen weight {name} changed"
    assert any(not torch.equal(p, weights[n]) for n, p in model.named_parameters() if "lora_B" in n)
