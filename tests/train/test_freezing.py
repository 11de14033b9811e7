"""--train_top_layers: only the top layers train, and the layers below run without a graph."""

import pytest
import torch

from coin_train.config import LoraArguments, ModelArguments
from coin_train.data import CoinCollator
from coin_train.freezing import decoder_layers, top_layer_indices
from coin_train.losses import CoinLoss
from coin_train.modeling import load_model

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def one_step(model, features, pad_id):
    """One SGD step on the CoIN loss; returns the parameters before it and whether each layer's output
    required a gradient during the forward pass."""
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    records = []
    hooks = [layer.register_forward_hook(lambda m, a, out, i=i: records.append((i, out[0].requires_grad
                                                                                 if isinstance(out, tuple)
                                                                                 else out.requires_grad)))
             for i, layer in enumerate(decoder_layers(model))]
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=1.0)
    CoinLoss(pack_views=False)(model, CoinCollator(pad_id)(features)).loss.backward()
    optimizer.step()
    for hook in hooks:
        hook.remove()
    return before, dict(records)


def changed(model, before, name_part):
    return {name: not torch.equal(before[name], p.detach()) for name, p in model.named_parameters() if name_part in name}


def test_full_fine_tuning_of_the_top_layer_leaves_the_trunk_untouched(tiny_model_dir, uneven_features, tiny_tokenizer):
    model = load_model(ModelArguments(model_name_or_path=str(tiny_model_dir), train_top_layers=1))
    before, requires_grad = one_step(model, uneven_features[:6], tiny_tokenizer.pad_token_id)
    assert requires_grad == {0: False, 1: True}  # no graph through layer 0: no activations kept there
    assert not any(changed(model, before, "layers.0.").values())
    assert not any(changed(model, before, "embed_tokens").values())
    assert all(changed(model, before, "layers.1.").values())
    assert all(changed(model, before, "lm_head").values()) and all(changed(model, before, "model.norm").values())


def test_lora_on_the_top_layer_only(tiny_model_dir, uneven_features, tiny_tokenizer):
    model = load_model(ModelArguments(model_name_or_path=str(tiny_model_dir), train_top_layers=1),
                       LoraArguments(use_lora=True, lora_r=4))
    adapters = [name for name, _ in model.named_parameters() if "lora_" in name]
    assert adapters and all("layers.1." in name for name in adapters)
    before, requires_grad = one_step(model, uneven_features[:6], tiny_tokenizer.pad_token_id)
    assert requires_grad == {0: False, 1: True}
    trained = changed(model, before, "lora_B")
    assert trained and all(trained.values())  # B starts at zero and moves
    assert not any(v for name, v in changed(model, before, "").items() if "lora_" not in name)


def test_all_layers_train_by_default(tiny_model_dir, uneven_features, tiny_tokenizer):
    model = load_model(ModelArguments(model_name_or_path=str(tiny_model_dir)))
    before, requires_grad = one_step(model, uneven_features[:6], tiny_tokenizer.pad_token_id)
    assert requires_grad == {0: True, 1: True} and all(changed(model, before, "layers.0.").values())


def test_bad_layer_counts_are_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="train_top_layers must be >= 1"):
        ModelArguments(model_name_or_path="m", train_top_layers=0)
    with pytest.raises(ValueError, match="between 1 and the model's 2 layers, got 3"):
        load_model(ModelArguments(model_name_or_path=str(tiny_model_dir), train_top_layers=3))
    assert top_layer_indices(2, 2) == [0, 1]
