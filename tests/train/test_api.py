"""The public API: every exported name resolves, and the loss module stays light to import."""

import subprocess
import sys

import coin_train


def test_every_exported_name_resolves():
    for name in coin_train.__all__:
        assert getattr(coin_train, name) is not None, name
    assert {"CoinConfig", "CoinTrainer", "info_nce", "PromptFormat", "smollm2_path"} <= set(coin_train.__all__)


def test_importing_the_losses_does_not_import_transformers():
    code = "import sys, coin_train.losses; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # worker processes and pure-loss users only pay for torch
