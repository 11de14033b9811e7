"""``--preset reference``: the reference code's setup, and its loss checked against an independent
implementation of the official objective written here (one sequence at a time, no padding, no packing)."""

import datasets
import pytest
import torch
import torch.nn.functional as F

from coin_data import schema
from coin_train.cli import parse_settings
from coin_train.config import CoinConfig, DataArguments, check_pairing, preset_settings
from coin_train.data import (GROUP_ID, NEGATIVE_GROUP_ID, CoinCollator, encode_dataset, ids_column,
                             pair_with_negatives, prompt_length_column)
from coin_train.losses import CoinLoss
from coin_train.trainer import CoinTrainer

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def reference_settings(**overrides):
    settings = preset_settings("reference") | {"model_name_or_path": "m", "dataset_name_or_path": "d",
                                               "output_dir": "out"}
    return parse_settings(settings | overrides, [])


@pytest.fixture(scope="module")
def paired(coin_rows, tiny_tokenizer):
    _, _, data_args, config = reference_settings()
    rows = datasets.Dataset.from_list(coin_rows, features=schema.FEATURES)
    encoded = encode_dataset(rows, tiny_tokenizer, data_args.prompt_format(), max_length=data_args.max_length,
                             with_negatives=config.uses_negatives)
    return encoded, pair_with_negatives(encoded)


def official_objective(model, rows, temperature=0.05, weight=1000.0):
    """The reference code's loss for one micro-batch, from its description: per view kind, token CE
    averaged over the answer tokens of the batch; the final hidden state at each sequence's last token;
    symmetric InfoNCE over the batch; ``c = w * L_ctr`` times ``min(w, L_gen / c)`` (detached) when
    ``c > L_gen``."""
    gen = 0.0
    pooled = {}
    for view in ("original", "paraphrase"):
        token_losses, last_states = [], []
        for row in rows:
            ids = torch.tensor([row[ids_column(view)]])  # [1, T]
            n_prompt = row[prompt_length_column(view)]
            out = model(input_ids=ids, output_hidden_states=True)
            logits = out.logits[0, n_prompt - 1 : -1]  # [answer, V]: position t predicts token t+1
            token_losses.append(F.cross_entropy(logits, ids[0, n_prompt:], reduction="none"))
            last_states.append(out.hidden_states[-1][0, -1])  # [H]
        gen = gen + torch.cat(token_losses).mean()
        pooled[view] = torch.stack(last_states)  # [B, H]
    similarity = F.cosine_similarity(pooled["original"][:, None], pooled["paraphrase"][None], dim=-1) / temperature
    labels = torch.arange(len(rows))
    ctr = (F.cross_entropy(similarity, labels) + F.cross_entropy(similarity.T, labels)) / 2
    c = weight * ctr
    if c > gen:
        c = c * min(weight, (gen.detach() / c.detach()).item())
    return gen + c, gen, ctr


def test_reference_preset_sets_the_reference_setup_and_options_still_override_it():
    model_args, lora_args, data_args, config = reference_settings()
    assert (data_args.add_eos, data_args.pair_negatives, data_args.max_length) == (False, True, 256)
    assert (config.per_device_train_batch_size, config.gradient_accumulation_steps) == (2, 32)
    assert config.train_sampling_strategy == "sequential" and not config.hard_negatives
    assert (config.learning_rate, config.num_train_epochs, config.warmup_steps) == (1e-4, 1.0, 0.1)
    assert (config.pooling, config.balance, config.temperature, config.contrastive_weight) == ("last", "cap", 0.05, 1000.0)
    assert lora_args.use_lora and (lora_args.lora_r, lora_args.lora_alpha, lora_args.lora_dropout) == (16, 16, 0.05)
    assert lora_args.lora_target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    *_, overridden = reference_settings(per_device_train_batch_size=4)
    assert overridden.per_device_train_batch_size == 4
    with pytest.raises(ValueError, match="unknown preset 'paper'"):
        preset_settings("paper")


def test_pairing_needs_an_even_batch_and_sequential_order():
    check_pairing(DataArguments("d", pair_negatives=True),
                  CoinConfig(output_dir="o", per_device_train_batch_size=2, train_sampling_strategy="sequential"))
    with pytest.raises(ValueError, match="even per_device_train_batch_size"):
        check_pairing(DataArguments("d", pair_negatives=True),
                      CoinConfig(output_dir="o", per_device_train_batch_size=3, train_sampling_strategy="sequential"))
    with pytest.raises(ValueError, match="sequential"):
        check_pairing(DataArguments("d", pair_negatives=True), CoinConfig(output_dir="o", per_device_train_batch_size=2))


def test_rows_are_paired_with_their_negative_and_carry_no_eos(paired, tiny_tokenizer):
    encoded, pairs = paired
    assert len(pairs) % 2 == 0 and len(pairs) >= len(encoded) // 2
    for anchor, negative in zip(pairs.select(range(0, len(pairs), 2)), pairs.select(range(1, len(pairs), 2))):
        assert negative[GROUP_ID] == anchor[NEGATIVE_GROUP_ID] != anchor[GROUP_ID]
        assert anchor["original_input_ids"][-1] != tiny_tokenizer.eos_token_id
        assert not anchor[ids_column("negative")]  # the partner is the negative: no extra negative view
    used = {(g, tuple(ids)) for g, ids in zip(pairs[GROUP_ID], pairs[ids_column("paraphrase")])}
    assert len(used) == len(pairs)  # every row at most once


def test_the_trainer_keeps_the_pairs_together_and_in_order(paired, make_tiny_model, tiny_tokenizer, tmp_path):
    _, pairs = paired
    *_, config = reference_settings(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = CoinTrainer(model=make_tiny_model(seed=1), args=config, train_dataset=pairs,
                          processing_class=tiny_tokenizer)
    batches = list(trainer.get_train_dataloader())
    assert len(batches) == len(pairs) // 2
    for index, batch in enumerate(batches):
        assert batch["group_ids"].tolist() == pairs[GROUP_ID][2 * index : 2 * index + 2]
        assert batch["input_ids"].shape[0] == 4  # 2 originals + 2 paraphrases, no negative views


@pytest.mark.parametrize("pack_views", [True, False], ids=["packed", "padded"])
@pytest.mark.parametrize("temperature", [0.05, 1.0], ids=["tau0.05", "tau1-capped"])
def test_reference_loss_and_gradients_equal_the_official_objective(paired, make_tiny_model, tiny_tokenizer,
                                                                   close_to_rounding, pack_views, temperature):
    _, pairs = paired
    *_, config = reference_settings(temperature=temperature)
    loss_fn = CoinLoss.from_config(config)
    loss_fn.pack_views = pack_views
    model = make_tiny_model(seed=9).to(torch.float64)
    checked = capped = 0
    for start in range(0, 4, 2):  # two micro-batches of (anchor, negative)
        rows = [pairs[start], pairs[start + 1]]
        model.zero_grad()
        ours = loss_fn(model, CoinCollator(tiny_tokenizer.pad_token_id, include_negatives=False)(rows))
        ours.loss.backward()
        our_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        model.zero_grad()
        total, gen, ctr = official_objective(model, rows, temperature=temperature)
        capped += bool(1000.0 * ctr > gen)
        total.backward()
        close_to_rounding(ours.gen_loss, gen.detach(), what="gen_loss")
        close_to_rounding(ours.contrastive_loss, ctr.detach(), what="contrastive_loss")
        close_to_rounding(ours.loss.detach(), total.detach(), what="loss")
        for name, param in model.named_parameters():
            close_to_rounding(our_grads[name], param.grad, what=name)
        checked += 1
    assert checked == 2
    assert capped == (2 if temperature == 1.0 else 0)  # tau=1: InfoNCE ~ log 2, so w * L_ctr > L_gen is capped
