"""Packing the views of a batch into fuller rows: layout, equivalence with padding, and the model check."""

import logging

import datasets
import pytest
import torch

from coin_data import schema
from coin_train.data import CoinCollator, encode_dataset
from coin_train.losses import CoinLoss
from coin_train.modeling import labelled_forward
from coin_train.packing import _first_fit_decreasing, pack_views, packing_matches_padding

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def features(uneven_features):
    return uneven_features


def padded(lengths, side="right", length=None):
    """A padded batch whose view v holds tokens 100*v + 1 .. 100*v + n."""
    length = length or max(lengths)
    ids = torch.zeros(len(lengths), length, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for v, n in enumerate(lengths):
        start = length - n if side == "left" else 0
        ids[v, start : start + n] = 100 * v + torch.arange(1, n + 1)
        mask[v, start : start + n] = 1
    return ids, mask


@pytest.mark.parametrize(("factor", "rows", "row_length"), [(1, 4, 7), (1.5, 3, 10)])
@pytest.mark.parametrize("side", ["right", "left"])
def test_every_real_token_lands_once_in_rows_of_bounded_length(side, factor, rows, row_length):
    lengths = [7, 2, 5, 3, 1, 6, 4]  # 28 tokens, 49 padded positions
    ids, mask = padded(lengths, side)
    packed = pack_views(ids, mask, row_length_factor=factor)
    # factor 1: rows of 7 = 7 | 6+1 | 5+2 | 4+3; factor 1.5: rows of up to 10 = 7+3 | 6+4 | 5+2+1
    assert packed.input_ids.shape == (rows, row_length)
    index = packed.index[mask.bool()]
    assert sorted(index.tolist()) == sorted(set(index.tolist()))  # no position used twice
    assert packed.input_ids.view(-1)[index].tolist() == ids[mask.bool()].tolist()
    assert (packed.index[~mask.bool()] == -1).all()
    flat_positions = packed.position_ids.view(-1)
    for v, n in enumerate(lengths):  # each view restarts at position 0 and counts up
        assert flat_positions[packed.index[v][mask[v].bool()]].tolist() == list(range(n))


def test_row_tails_are_blocks_of_their_own():
    packed = pack_views(*padded([3, 1]), row_length_factor=1)  # rows of 3: [view 0], [view 1, tail of 2]
    assert packed.position_ids.tolist() == [[0, 1, 2], [0, 0, 1]]


def test_unpack_and_gather_invert_packing():
    ids, mask = padded([4, 2, 3], side="left")
    packed = pack_views(ids, mask)
    assert packed.unpack(packed.input_ids).tolist() == (ids * mask).tolist()
    where = torch.zeros_like(mask, dtype=torch.bool)
    where[0, 1], where[2, 3] = True, True  # row-major order: view 0 before view 2
    assert packed.gather(packed.input_ids, where).tolist() == [ids[0, 1].item(), ids[2, 3].item()]


def test_rows_are_as_long_as_their_fullest_and_factor_below_one_is_an_error():
    assert pack_views(*padded([3, 1])).input_ids.shape == (1, 4)  # 1.5 x 3 -> room for both, no tail
    with pytest.raises(ValueError, match="row_length_factor"):
        pack_views(*padded([3, 1]), row_length_factor=0.5)


def test_first_fit_decreasing_never_exceeds_capacity():
    lengths = [9, 1, 8, 2, 7, 3, 6, 4, 5, 5]
    bins = _first_fit_decreasing(lengths, 10)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)
    assert len(bins) == 5  # 50 tokens, perfectly packed


@pytest.mark.parametrize("side", ["right", "left"])
def test_packed_forward_equals_padded_forward(make_tiny_model, tiny_tokenizer, features, side, close_to_rounding):
    model = make_tiny_model(seed=7).eval()
    batch = CoinCollator(tiny_tokenizer.pad_token_id, padding_side=side)(features)
    select = torch.zeros_like(batch["labels"], dtype=torch.bool)
    select[:, :-1] = batch["labels"][:, 1:] != -100
    args = (model, batch["input_ids"], batch["attention_mask"], batch["position_ids"], select)
    with torch.no_grad():
        hidden_padded, logits_padded = labelled_forward(*args)
        hidden_packed, logits_packed = labelled_forward(*args, pack=True)
    real = batch["attention_mask"].bool()
    assert pack_views(batch["input_ids"], batch["attention_mask"]).input_ids.numel() < batch["input_ids"].numel()
    close_to_rounding(hidden_packed[real], hidden_padded[real], what="hidden states")
    assert (hidden_packed[~real] == 0).all()
    close_to_rounding(logits_packed, logits_padded, what="logits")


def test_views_that_cannot_share_a_row_run_padded(make_tiny_model):
    ids, mask = padded([5, 4, 5])  # no two fit in 1.5 x 5 positions: packing would save nothing
    select = mask.bool().clone()
    select[:, -1] = False
    model = make_tiny_model(seed=3)
    shapes = []
    model.model.register_forward_pre_hook(lambda module, args, kwargs: shapes.append(
        (tuple(kwargs["input_ids"].shape), kwargs.get("attention_mask") is not None)), with_kwargs=True)
    with torch.no_grad():
        labelled_forward(model, ids, mask, torch.arange(5).expand(3, 5) * mask, select, pack=True)
    assert shapes == [((3, 5), True)]  # the padded batch, with its attention mask


def test_select_on_padding_is_an_error(make_tiny_model):
    ids, mask = padded([3, 2])
    select = torch.zeros_like(mask, dtype=torch.bool)
    select[1, 2] = True  # view 1 has 2 tokens: position 2 is padding
    with pytest.raises(ValueError, match="padding"):
        labelled_forward(make_tiny_model(), ids, mask, torch.zeros_like(ids), select, pack=True)


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_llama_keeps_packed_views_apart(make_tiny_model, attn_implementation):
    model = make_tiny_model(seed=1, attn_implementation=attn_implementation).train()
    assert packing_matches_padding(model, torch.tensor([5, 9, 13]))
    assert model.training  # the check restores the mode it found


class MaskAllLlama(torch.nn.Module):
    """A causal LM whose forward fills in an all-ones attention mask when none is given, as custom
    (remote-code) models sometimes do: packed views then attend to each other."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def get_output_embeddings(self):
        return self.inner.get_output_embeddings()

    def forward(self, input_ids, attention_mask=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, **kwargs)


def test_a_model_that_mixes_packed_views_falls_back_to_padding(make_tiny_model, tiny_tokenizer, features, caplog):
    model = MaskAllLlama(make_tiny_model(seed=2)).eval()
    assert not packing_matches_padding(model, torch.tensor([5, 9, 13]))

    batch = CoinCollator(tiny_tokenizer.pad_token_id)(features)
    loss_fn = CoinLoss(pack_views=True)
    with caplog.at_level(logging.WARNING, logger="coin_train.losses"), torch.no_grad():
        fallback = loss_fn(model, batch)
        padded_loss = CoinLoss(pack_views=False)(model, batch)
    assert loss_fn._packing_checked is False
    assert "padding every view instead" in caplog.text
    assert fallback.loss.item() == pytest.approx(padded_loss.loss.item(), rel=1e-6)


def test_the_check_passes_in_bfloat16(make_tiny_model):
    model = make_tiny_model(seed=4).to(torch.bfloat16)
    assert packing_matches_padding(model, torch.tensor([5, 9, 13]))
    assert not packing_matches_padding(MaskAllLlama(model), torch.tensor([5, 9, 13]))
