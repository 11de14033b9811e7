"""Prefix-cached, row-seeded sampling of the hf:MODEL backend (coin_data.paraphrase.sampling), on a tiny model."""

import pytest

from coin_data.paraphrase.sampling import (
    SamplingSettings,
    encode_prefix,
    filter_top_p,
    sample_rows,
    shared_prefix_length,
)

OPENING = [5, 9, 14, 3, 27, 8, 30, 11, 19, 6, 40, 12]  # the tokens every prompt starts with
PROMPTS = [OPENING + [21, 7], OPENING + [33, 17, 25, 4, 9], OPENING + [50]]
NO_STOP: set[int] = set()


@pytest.fixture(scope="module")
def model(make_tiny_model):
    return make_tiny_model(seed=3).eval()


def test_prefix_cache_and_middle_padding_give_what_plain_generation_gives(model):
    """Greedy rows after the shared cache, padded between prefix and own tokens, equal whole-prompt generate()."""
    import torch

    prefix = encode_prefix(model, OPENING)
    got = sample_rows(model, PROMPTS, [0, 0, 0], [6, 6, 6], prefix, 0, NO_STOP, SamplingSettings(temperature=0))
    for prompt, tokens in zip(PROMPTS, got):
        with torch.no_grad():
            whole = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                   max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0)
        assert tokens == whole[0, len(prompt):].tolist()
    # A prompt that does not open with the prefix runs whole in the same batch.
    other = [7, 7, 2, 44]
    mixed = sample_rows(model, [PROMPTS[0], other], [0, 0], [6, 6], prefix, 0, NO_STOP, SamplingSettings(temperature=0))
    alone = sample_rows(model, [other], [0], [6], None, 0, NO_STOP, SamplingSettings(temperature=0))
    assert mixed == [got[0], alone[0]]


def test_each_row_draws_with_its_own_seed(model):
    prefix = encode_prefix(model, OPENING)
    settings = SamplingSettings(temperature=1.0, top_p=0.95)
    batch = sample_rows(model, PROMPTS, [11, 12, 13], [8, 8, 8], prefix, 0, NO_STOP, settings)
    assert sample_rows(model, PROMPTS, [11, 12, 13], [8, 8, 8], prefix, 0, NO_STOP, settings) == batch  # same seeds
    # a row's draw does not depend on the rows beside it (nor on the global RNG)
    import torch

    torch.manual_seed(999)
    assert sample_rows(model, [PROMPTS[1]], [12], [8], prefix, 0, NO_STOP, settings) == [batch[1]]
    assert sample_rows(model, [PROMPTS[1]], [77], [8], prefix, 0, NO_STOP, settings) != [batch[1]]


def test_rows_end_at_their_limit_or_a_stop_token_and_say_so(model):
    prefix = encode_prefix(model, OPENING)
    ended = []
    out = sample_rows(model, PROMPTS, [1, 2, 3], [1, 4, 2], prefix, 0, NO_STOP, SamplingSettings(), ended.append)
    assert [len(row) for row in out] == [1, 4, 2] and sorted(ended) == [0, 1, 2] and ended[0] == 0
    # A stop token ends a row without being part of it: with every token a stop token, nothing is written.
    everything = set(range(model.config.vocab_size))
    ended.clear()
    assert sample_rows(model, PROMPTS, [1, 2, 3], [4, 4, 4], prefix, 0, everything, SamplingSettings(),
                       ended.append) == [[], [], []]
    assert ended == [0, 1, 2]


def test_nucleus_keeps_the_smallest_likely_set():
    import torch

    probs = torch.tensor([[0.05, 0.5, 0.25, 0.2], [0.97, 0.01, 0.01, 0.01]])
    assert filter_top_p(probs, 0.7).tolist() == [[0.0, pytest.approx(2 / 3), pytest.approx(1 / 3), 0.0],
                                                 [1.0, 0.0, 0.0, 0.0]]
    assert torch.allclose(filter_top_p(probs, 1.0), probs)  # top_p 1: nothing cut


def test_shared_prefix_leaves_each_row_a_token():
    assert shared_prefix_length(PROMPTS) == len(OPENING)
    assert shared_prefix_length([OPENING, OPENING + [1]]) == len(OPENING) - 1
    assert shared_prefix_length([]) == 0
