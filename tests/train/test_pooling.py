"""Pooling reads real tokens only: the same vectors under left and right padding."""

import datasets
import pytest
import torch

from coin_data import schema
from coin_train.data import CoinCollator, encode_dataset
from coin_train.losses import CoinLoss
from coin_train.modeling import labelled_forward
from coin_train.pooling import last_token_pool, mean_pool, pool

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def pad(rows: list[torch.Tensor], side: str) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(r) for r in rows)
    hidden = torch.full((len(rows), length, rows[0].shape[-1]), 99.0)  # garbage in the padding
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, r in enumerate(rows):
        start = length - len(r) if side == "left" else 0
        hidden[i, start : start + len(r)], mask[i, start : start + len(r)] = r, 1
    return hidden, mask


def test_pure_pooling_ignores_padding_on_either_side():
    gen = torch.Generator().manual_seed(0)
    rows = [torch.randn(n, 5, generator=gen) for n in (3, 7, 1)]
    for method, expected in (("last", torch.stack([r[-1] for r in rows])),
                             ("mean", torch.stack([r.mean(0) for r in rows]))):
        for side in ("left", "right"):
            hidden, mask = pad(rows, side)
            assert torch.allclose(pool(hidden, mask, method), expected, atol=1e-6), (method, side)


def test_pool_rejects_unknown_methods():
    with pytest.raises(ValueError, match="unknown pooling"):
        pool(torch.zeros(1, 1, 1), torch.ones(1, 1), "max")
    assert last_token_pool(torch.ones(1, 2, 3), torch.ones(1, 2)).shape == (1, 3)
    assert mean_pool(torch.ones(1, 2, 3), torch.zeros(1, 2)).abs().sum() == 0  # all padding: zeros, not NaN


@pytest.fixture(scope="module")
def features(coin_rows, tiny_tokenizer):
    rows = datasets.Dataset.from_list(coin_rows[:8], features=schema.FEATURES)
    encoded = encode_dataset(rows, tiny_tokenizer, max_length=64)
    return [encoded[i] for i in range(len(encoded))]


@pytest.mark.parametrize("method", ["last", "mean"])
def test_model_pooled_states_match_under_left_and_right_padding(make_tiny_model, tiny_tokenizer, features, method,
                                                                close_to_rounding):
    model = make_tiny_model(seed=1).eval()
    pooled, logits = {}, {}
    for side in ("left", "right"):
        batch = CoinCollator(tiny_tokenizer.pad_token_id, padding_side=side)(features)
        select = torch.zeros_like(batch["labels"], dtype=torch.bool)
        select[:, :-1] = batch["labels"][:, 1:] != -100
        with torch.no_grad():
            hidden, logits[side] = labelled_forward(model, batch["input_ids"], batch["attention_mask"],
                                                    batch["position_ids"], select)
        pooled[side] = pool(hidden, batch["attention_mask"], method)
    close_to_rounding(pooled["left"], pooled["right"], what="pooled")
    close_to_rounding(logits["left"], logits["right"], what="logits")  # same labelled positions, same order


def test_coin_loss_is_the_same_under_left_and_right_padding(make_tiny_model, tiny_tokenizer, features, close_to_rounding):
    model = make_tiny_model(seed=2).eval()
    loss_fn = CoinLoss(temperature=0.05, weight=1.0, balance="fixed")
    with torch.no_grad():
        left = loss_fn(model, CoinCollator(tiny_tokenizer.pad_token_id, padding_side="left")(features))
        right = loss_fn(model, CoinCollator(tiny_tokenizer.pad_token_id, padding_side="right")(features))
    for name in ("loss", "gen_loss", "contrastive_loss", "contrastive_accuracy"):
        close_to_rounding(getattr(left, name), getattr(right, name), what=name)
