"""Cross-process candidates: two CPU processes (gloo) with gathering give the single-process loss and gradients."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from coin_train.losses import info_nce

WORLD, DIM = 2, 8
ROWS_PER_RANK = (4, 2)  # unequal micro-batches (e.g. the last of an epoch): each rank's share is reweighted
NEGATIVES_PER_RANK = (0, 3)  # ragged on purpose, one process with none: no collective may hang

WORKER = textwrap.dedent(f"""
    import json, sys, torch, torch.distributed as dist
    from coin_train.losses import CoinLoss
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    data = torch.load(sys.argv[1])
    rows = slice(sum({ROWS_PER_RANK}[:rank]), sum({ROWS_PER_RANK}[: rank + 1]))
    negs = slice(sum({NEGATIVES_PER_RANK}[:rank]), sum({NEGATIVES_PER_RANK}[: rank + 1]))
    o = data["o"][rows].clone().requires_grad_()
    p = data["p"][rows].clone().requires_grad_()
    n = data["n"][negs].clone().requires_grad_()
    loss_fn = CoinLoss(temperature=0.1, gather_across_devices=True)
    loss, accuracy = loss_fn.contrastive_term(o, p, n, data["groups"][rows], data["negative_groups"][negs])
    loss.backward()
    out = {{"loss": loss.item(), "accuracy": accuracy.item(),
            "grad_o": o.grad.tolist(), "grad_p": p.grad.tolist(), "grad_n": n.grad.tolist()}}
    json.dump(out, open(sys.argv[2] + f"/rank{{rank}}.json", "w"))
    dist.destroy_process_group()
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gathered_candidates_match_one_process_on_the_whole_batch(tmp_path):
    gen = torch.Generator().manual_seed(0)
    n_rows, n_neg = sum(ROWS_PER_RANK), sum(NEGATIVES_PER_RANK)
    groups = torch.arange(n_rows)
    groups[4] = groups[1]  # rows on different ranks that are views of one instance: masked across processes
    data = {"o": torch.randn(n_rows, DIM, generator=gen), "p": torch.randn(n_rows, DIM, generator=gen),
            "n": torch.randn(n_neg, DIM, generator=gen), "groups": groups,
            "negative_groups": torch.tensor([-1, 0, -1])}  # the second negative is instance 0: masked for row 0
    torch.save(data, tmp_path / "data.pt")
    (tmp_path / "worker.py").write_text(WORKER)

    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(WORLD),
           "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(tmp_path / "data.pt"), str(tmp_path)],
                              env={**env, "RANK": str(rank)}, stderr=subprocess.PIPE, text=True)
             for rank in range(WORLD)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]

    o, p, n = (data[k].clone().requires_grad_() for k in ("o", "p", "n"))
    full = info_nce(o, p, n, temperature=0.1, groups=groups, negative_groups=data["negative_groups"])
    full.backward()
    assert sum(r["loss"] for r in ranks) / WORLD == pytest.approx(full.item(), rel=1e-5)
    # DDP averages gradients over processes: (1/W) * local gradient == the whole-batch gradient.
    grad_o = torch.tensor([g for r in ranks for g in r["grad_o"]]) / WORLD
    grad_p = torch.tensor([g for r in ranks for g in r["grad_p"]]) / WORLD
    grad_n = torch.tensor([g for r in ranks for g in r["grad_n"]]) / WORLD
    assert torch.allclose(grad_o, o.grad, atol=1e-6)
    assert torch.allclose(grad_p, p.grad, atol=1e-6)
    assert torch.allclose(grad_n, n.grad, atol=1e-6)
