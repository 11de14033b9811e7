"""LoRA dropout fused into the A projection: same computation as peft's, less saved activation memory."""

import pytest
import torch
import torch.nn.functional as F
from peft import PeftModel

from coin_train.config import LoraArguments, ModelArguments
from coin_train.lora_dropout import DropoutLinear, fuse_lora_dropout, set_fused
from coin_train.modeling import attach_lora, load_model

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_fused_dropout_gives_the_values_and_gradients_of_dropout_then_linear():
    torch.manual_seed(0)
    layer = DropoutLinear(8, 4, p=0.3)
    x = torch.randn(2, 5, 8, requires_grad=True)
    torch.manual_seed(1)
    out = layer(x)
    out.pow(2).sum().backward()

    torch.manual_seed(1)
    keep = torch.rand(x.shape) >= 0.3  # the mask the layer drew
    x_ref = x.detach().clone().requires_grad_(True)
    w_ref = layer.weight.detach().clone().requires_grad_(True)
    expected = F.linear(x_ref * keep / 0.7, w_ref)
    expected.pow(2).sum().backward()
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-5)
    assert torch.allclose(layer.weight.grad, w_ref.grad, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_drop_rate_and_scaling(fused):
    layer = DropoutLinear(64, 64, p=0.25)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(64))  # the output is the dropped-out input
    layer.fused = fused
    torch.manual_seed(0)
    out = layer(torch.ones(1000, 64))
    assert (out == 0).float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert torch.allclose(out[out != 0], torch.tensor(1 / 0.75))


def test_eval_mode_and_zero_rate_are_plain_linear():
    layer = DropoutLinear(6, 3, p=0.5).eval()
    x = torch.randn(4, 6)
    assert torch.equal(layer(x), x @ layer.weight.T)
    with pytest.raises(ValueError, match="dropout probability"):
        DropoutLinear(6, 3, p=1.0)


def lora_model(make_tiny_model, fuse: bool, dropout: float = 0.1):
    torch.manual_seed(0)
    return attach_lora(make_tiny_model(seed=0), LoraArguments(use_lora=True, lora_r=4, lora_dropout=dropout,
                                                              lora_fuse_dropout=fuse))


def test_attach_lora_fuses_every_adapter_and_keeps_the_state_dict(make_tiny_model):
    fused, stock = lora_model(make_tiny_model, True), lora_model(make_tiny_model, False)
    assert sum(isinstance(m, DropoutLinear) for m in fused.modules()) == 2 * 4  # 2 layers x q/k/v/o
    assert not any(isinstance(m, DropoutLinear) for m in stock.modules())
    assert not any(isinstance(m, torch.nn.Dropout) for m in fused.modules())
    assert fused.state_dict().keys() == stock.state_dict().keys()
    trainable = lambda model: [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable(fused) == trainable(stock)
    ids = torch.tensor([[3, 8, 21, 5]])
    assert torch.equal(fused.eval()(input_ids=ids).logits, stock.eval()(input_ids=ids).logits)


def test_layers_without_dropout_are_left_alone(make_tiny_model):
    model = lora_model(make_tiny_model, True, dropout=0.0)
    assert not any(isinstance(m, DropoutLinear) for m in model.modules())
    assert fuse_lora_dropout(model) == 0


def saved_activation_bytes(model, ids) -> int:
    """Bytes autograd keeps for the backward pass, parameters and shared storages counted once."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor):
        ptr = tensor.untyped_storage().data_ptr()
        if ptr not in params:
            seen[ptr] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(input_ids=ids).logits.sum().backward()
    return sum(seen.values())


def test_fused_dropout_saves_less_for_backward(make_tiny_model):
    model = lora_model(make_tiny_model, True).train()
    ids = torch.randint(0, 200, (4, 48))
    fused = saved_activation_bytes(model, ids)
    assert set_fused(model, False) == 8
    stock = saved_activation_bytes(model, ids)
    # per token and layer peft keeps 4 dropped-out copies and 4 float masks of the hidden size; fused keeps
    # the shared q/k/v input, the o input and 4 bool masks
    assert fused < 0.8 * stock


def test_a_trained_fused_adapter_saves_and_reloads(make_tiny_model, tiny_model_dir, tmp_path, close_to_rounding):
    model = load_model(ModelArguments(model_name_or_path=str(tiny_model_dir)),
                       LoraArguments(use_lora=True, lora_r=4, lora_dropout=0.2)).train()
    assert any(isinstance(m, DropoutLinear) for m in model.modules())
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    ids = torch.randint(0, 200, (2, 16))
    for _ in range(2):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(tmp_path / "adapter")

    untouched = load_model(ModelArguments(model_name_or_path=str(tiny_model_dir))).eval()
    reloaded = PeftModel.from_pretrained(load_model(ModelArguments(model_name_or_path=str(tiny_model_dir))),
                                         tmp_path / "adapter").eval()
    with torch.no_grad():
        expected = model.eval()(input_ids=ids).logits
        assert not torch.allclose(expected, untouched(input_ids=ids).logits, atol=1e-3)  # the adapter trained
        close_to_rounding(reloaded(input_ids=ids).logits, expected, what="reloaded logits")
