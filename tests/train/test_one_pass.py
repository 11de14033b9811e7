"""One forward pass over all views gives the loss (and gradients) of separate per-view passes."""

import datasets
import pytest
import torch

from coin_data import schema
from coin_train.data import CoinCollator, encode_dataset, ids_column, prompt_length_column
from coin_train.losses import CoinLoss, balance_contrastive, info_nce
from coin_train import packing
from coin_train.pooling import pool

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def features(uneven_features):
    return uneven_features[:10]


def single_view_batch(features, view, pad_id):
    """Batch of one view kind only, right-padded on its own (as the reference code's separate passes)."""
    views = [(f[ids_column(view)], f[prompt_length_column(view)]) for f in features if f[ids_column(view)]]
    length = max(len(ids) for ids, _ in views)
    input_ids = torch.full((len(views), length), pad_id)
    attention_mask = torch.zeros(len(views), length, dtype=torch.long)
    labels = torch.full((len(views), length), -100)
    for row, (ids, n_prompt) in enumerate(views):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        labels[row, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels,
            "position_ids": torch.arange(length).expand(len(views), -1)}


def separate_passes(model, features, pad_id, pooling):
    """Per view kind: token cross-entropy over full logits (in the model's dtype) and the pooled final state."""
    gen, pooled = {}, {}
    for view in ("original", "paraphrase", "negative"):
        batch = single_view_batch(features, view, pad_id)
        labels = batch.pop("labels")
        logits = model(**batch).logits  # [B, T, V]
        gen[view] = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                                                      ignore_index=-100)
        hidden = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             position_ids=batch["position_ids"]).last_hidden_state
        pooled[view] = pool(hidden, batch["attention_mask"], pooling)
    return gen, pooled


@pytest.mark.parametrize("pack_views", [True, False], ids=["packed", "padded"])
@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_one_pass_loss_and_gradients_equal_separate_passes(make_tiny_model, tiny_tokenizer, features, pooling,
                                                            padding_side, pack_views):
    pad_id = tiny_tokenizer.pad_token_id
    groups = torch.tensor([f["group_id"] for f in features])
    negative_groups = torch.tensor([f["negative_group_id"] for f in features if f[ids_column("negative")]])
    loss_fn = CoinLoss(temperature=0.05, weight=1000.0, balance="cap", pooling=pooling, pack_views=pack_views)

    # float64: the two computations sum in different orders; in float32 that rounding alone reaches
    # relative 1e-3 on some machines (gradients of ~10, differences of ~8e-6).
    model = make_tiny_model(seed=3).to(torch.float64)
    batch = CoinCollator(pad_id, padding_side=padding_side)(features)
    packed = packing.pack_views(batch["input_ids"], batch["attention_mask"])
    assert packed.input_ids.numel() < 0.8 * batch["input_ids"].numel()  # packing does change the layout
    one = loss_fn(model, batch)
    assert loss_fn._packing_checked is (True if pack_views else None)
    one.loss.backward()
    one_grads = {n: p.grad.clone() for n, p in model.named_parameters()}

    model.zero_grad()
    gen, pooled = separate_passes(model, features, pad_id, pooling)
    gen_loss = gen["original"] + gen["paraphrase"]
    ctr = info_nce(pooled["original"], pooled["paraphrase"], pooled["negative"], temperature=0.05,
                   groups=groups, negative_groups=negative_groups)
    total = gen_loss + balance_contrastive(gen_loss, ctr, 1000.0, "cap")
    total.backward()

    assert one.gen_loss.item() == pytest.approx(gen_loss.item(), rel=1e-6)
    assert one.contrastive_loss.item() == pytest.approx(ctr.item(), rel=1e-5)
    assert one.loss.item() == pytest.approx(total.item(), rel=1e-5)
    # The model runs in float64 but its RMSNorms compute in float32, so gradients agree to float32
    # rounding scaled by their magnitude (observed: at most ~2 eps32 x max|grad|), never better.
    eps32 = torch.finfo(torch.float32).eps
    for name, param in model.named_parameters():
        tolerance = 32 * eps32 * param.grad.abs().max().item()
        worst = (one_grads[name] - param.grad).abs().max().item()
        assert worst <= tolerance, (name, worst, tolerance)


@pytest.mark.parametrize("pack_views", [True, False], ids=["packed", "padded"])
def test_logits_are_computed_only_at_labelled_positions(make_tiny_model, tiny_tokenizer, features, pack_views):
    model = make_tiny_model(seed=4)
    batch = CoinCollator(tiny_tokenizer.pad_token_id)(features)
    losses = CoinLoss(pack_views=pack_views), CoinLoss(negative_gen_loss=True, pack_views=pack_views)
    for loss_fn in losses:
        loss_fn._packing(model, batch)  # the one-time packing check runs full (tiny) logits: not counted here
    shapes = []
    model.lm_head.register_forward_hook(lambda module, args, output: shapes.append(tuple(output.shape)))
    n_rows = len(features)
    labelled = (batch["labels"] != -100).sum(dim=1)  # [views]
    with torch.no_grad():
        for loss_fn in losses:
            loss_fn(model, batch)
    vocab = model.config.vocab_size
    assert shapes[0] == (1, labelled[: 2 * n_rows].sum().item(), vocab)  # originals + paraphrases only
    assert shapes[1] == (1, labelled.sum().item(), vocab)  # + negatives when they are trained
    assert shapes[0][1] < batch["input_ids"].numel() / 5  # a small share of all positions


def test_negative_generation_loss_adds_the_negative_views_mean(make_tiny_model, tiny_tokenizer, features):
    model = make_tiny_model(seed=5)
    pad_id = tiny_tokenizer.pad_token_id
    with torch.no_grad():
        with_negative = CoinLoss(negative_gen_loss=True)(model, CoinCollator(pad_id)(features))
        gen, _ = separate_passes(model, features, pad_id, "last")
    expected = gen["original"] + gen["paraphrase"] + gen["negative"]
    assert with_negative.gen_loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_baseline_has_no_contrastive_gradient_but_reports_the_loss(make_tiny_model, tiny_tokenizer, features):
    model = make_tiny_model(seed=6)
    batch = CoinCollator(tiny_tokenizer.pad_token_id)(features)
    out = CoinLoss(contrastive=False)(model, batch)
    assert out.loss.item() == pytest.approx(out.gen_loss.item())
    assert out.contrastive_loss.item() > 0 and 0.0 <= out.contrastive_accuracy.item() <= 1.0
    out.loss.backward()
    coin = make_tiny_model(seed=6)
    CoinLoss(contrastive=True)(coin, batch).loss.backward()
    assert torch.allclose(model.lm_head.weight.grad, coin.lm_head.weight.grad)  # lm_head: generation only
    q_base, q_coin = (m.model.layers[0].self_attn.q_proj.weight.grad for m in (model, coin))
    assert not torch.allclose(q_base, q_coin)  # the contrastive gradient reaches the layers
