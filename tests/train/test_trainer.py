"""CoinTrainer on a tiny random-init causal LM: learning, logging, LoRA, baseline, checkpoints, resuming."""

import pytest
import torch
from transformers import AutoModelForCausalLM, TrainerCallback

from coin_train.config import CoinConfig, LoraArguments
from coin_train.data import CoinCollator, encode_dataset, load_coin_dataset
from coin_train.losses import CoinLoss
from coin_train.modeling import attach_lora
from coin_train.prompt_format import PromptFormat
from coin_train.trainer import CoinTrainer

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def splits(coin_dataset_dir, tiny_tokenizer):
    raw = load_coin_dataset(str(coin_dataset_dir), splits=("train", "validation"))
    return {name: encode_dataset(raw[name], tiny_tokenizer, max_length=64) for name in ("train", "validation")}


def config(tmp_path, **overrides) -> CoinConfig:
    settings = {"output_dir": str(tmp_path / "out"), "per_device_train_batch_size": 8, "learning_rate": 1e-2,
                "max_steps": 12, "logging_steps": 4, "save_strategy": "no", "use_cpu": True, "disable_tqdm": True,
                "seed": 0, "dataloader_num_workers": 0}
    settings.update(overrides)
    return CoinConfig(**settings)


def fixed_batch_loss(model, splits, tiny_tokenizer):
    batch = CoinCollator(tiny_tokenizer.pad_token_id)([splits["train"][i] for i in range(8)])
    model.eval()
    with torch.no_grad():
        out = CoinLoss(weight=1.0, balance="fixed")(model, batch)
    model.train()
    return out


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_training_lowers_the_loss_changes_every_weight_and_logs_the_parts(tmp_path, make_tiny_model, tiny_tokenizer,
                                                                          splits):
    model = make_tiny_model(seed=0)
    before, weights = fixed_batch_loss(model, splits, tiny_tokenizer), snapshot(model)
    trainer = CoinTrainer(model=model, args=config(tmp_path), train_dataset=splits["train"],
                          processing_class=tiny_tokenizer)
    trainer.train()
    after = fixed_batch_loss(model, splits, tiny_tokenizer)
    assert after.gen_loss < 0.6 * before.gen_loss
    assert after.contrastive_loss < before.contrastive_loss
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, weights[name])}
    assert changed == set(weights)  # every trainable weight moved
    logs = [entry for entry in trainer.state.log_history if "gen_loss" in entry and "loss" in entry]
    assert len(logs) == 3
    for entry in logs:
        assert entry["loss"] == pytest.approx(entry["gen_loss"] + min(1000 * entry["contrastive_loss"],
                                                                     entry["gen_loss"]), rel=0.05)
        assert 0.0 <= entry["contrastive_accuracy"] <= 1.0
    assert logs[-1]["loss"] < logs[0]["loss"]


def test_lora_trains_the_adapters_and_never_the_frozen_base(tmp_path, make_tiny_model, tiny_tokenizer, splits):
    model = attach_lora(make_tiny_model(seed=0), LoraArguments(use_lora=True, lora_r=4, lora_alpha=8,
                                                               lora_target_modules=["q_proj", "v_proj"]))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    weights = snapshot(model)
    CoinTrainer(model=model, args=config(tmp_path, max_steps=6, learning_rate=1e-2),
                train_dataset=splits["train"], processing_class=tiny_tokenizer).train()
    for name, p in model.named_parameters():
        if name in trainable:
            if "lora_B" in name:  # lora_A gets no gradient while lora_B is still zero at step 1, then both move
                assert not torch.equal(p, weights[name]), name
        else:
            assert torch.equal(p, weights[name]), f"frozen weight {name} changed"
    assert any(not torch.equal(p, weights[n]) for n, p in model.named_parameters() if "lora_A" in n)


def test_no_contrastive_is_the_generation_only_baseline(tmp_path, make_tiny_model, tiny_tokenizer, splits):
    trainer = CoinTrainer(model=make_tiny_model(seed=0), args=config(tmp_path, contrastive=False, max_steps=8),
                          train_dataset=splits["train"], processing_class=tiny_tokenizer)
    assert trainer.data_collator.include_negatives is False  # the baseline does not need negatives
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "gen_loss" in entry and "loss" in entry]
    assert logs and all(entry["loss"] == pytest.approx(entry["gen_loss"], rel=1e-3) for entry in logs)
    assert all(entry["contrastive_loss"] > 0 for entry in logs)  # still reported, for comparison


def test_evaluate_reports_prefixed_parts(tmp_path, make_tiny_model, tiny_tokenizer, splits):
    trainer = CoinTrainer(model=make_tiny_model(seed=0), args=config(tmp_path, per_device_eval_batch_size=4),
                          train_dataset=splits["train"], eval_dataset=splits["validation"],
                          processing_class=tiny_tokenizer)
    metrics = trainer.evaluate()
    for name in ("eval_loss", "eval_gen_loss", "eval_contrastive_loss", "eval_contrastive_accuracy"):
        assert name in metrics and metrics[name] == metrics[name]  # present and not NaN
    assert metrics["eval_loss"] >= metrics["eval_gen_loss"]


def test_activation_checkpointing_and_bf16_train(tmp_path, make_tiny_model, tiny_tokenizer, splits):
    model = make_tiny_model(seed=0)
    weights = snapshot(model)
    trainer = CoinTrainer(model=model, args=config(tmp_path, max_steps=2, bf16=True, activation_checkpointing=True),
                          train_dataset=splits["train"], processing_class=tiny_tokenizer)
    result = trainer.train()
    assert model.is_gradient_checkpointing
    assert torch.isfinite(torch.tensor(result.training_loss))
    assert not torch.equal(model.model.layers[0].mlp.up_proj.weight, weights["model.layers.0.mlp.up_proj.weight"])


def test_checkpoints_reload_with_from_pretrained_and_resume(tmp_path, make_tiny_model, tiny_tokenizer, splits):
    fmt = PromptFormat(template="Q: {prompt}\nA: {target}")
    args = config(tmp_path, max_steps=4, save_strategy="steps", save_steps=2, logging_steps=2)
    trainer = CoinTrainer(model=make_tiny_model(seed=0), args=args, train_dataset=splits["train"],
                          processing_class=tiny_tokenizer, prompt_format=fmt)
    trainer.train()
    out = tmp_path / "out"
    checkpoint = out / "checkpoint-4"
    assert (checkpoint / "coin_prompt.json").is_file() and PromptFormat.load(checkpoint) == fmt
    reloaded = AutoModelForCausalLM.from_pretrained(checkpoint)
    for name, p in trainer.model.named_parameters():
        assert torch.equal(reloaded.get_parameter(name), p), name

    class CountSteps(TrainerCallback):
        steps = 0

        def on_step_end(self, *args, **kwargs):
            CountSteps.steps += 1

    resumed = CoinTrainer(model=make_tiny_model(seed=0), args=config(tmp_path, max_steps=6, save_strategy="no"),
                          train_dataset=splits["train"], processing_class=tiny_tokenizer, callbacks=[CountSteps()])
    resumed.train(resume_from_checkpoint=str(out / "checkpoint-2"))
    assert resumed.state.global_step == 6 and CountSteps.steps == 4  # continued from step 2, not restarted


def test_trainer_needs_a_coin_config_and_a_tokenizer(tmp_path, make_tiny_model):
    from transformers import TrainingArguments

    with pytest.raises(TypeError, match="CoinConfig"):
        CoinTrainer(model=make_tiny_model(), args=TrainingArguments(output_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="processing_class"):
        CoinTrainer(model=make_tiny_model(), args=config(tmp_path))


def test_config_validates_its_fields(tmp_path):
    with pytest.raises(ValueError, match="temperature"):
        config(tmp_path, temperature=0.0)
    with pytest.raises(ValueError, match="balance"):
        config(tmp_path, balance="clip")
    with pytest.raises(ValueError, match="remove_unused_columns"):
        config(tmp_path, remove_unused_columns=True)
    assert config(tmp_path, contrastive=False).uses_negatives is False
