"""Step time and peak memory of one CoIN training step against plain instruction tuning and the
reference code's approach, on CPU. Prints JSON.

    python benchmarks/train_step.py                       # tiny Llama (32k vocab) + SmolLM2-135M (LoRA)
    python benchmarks/train_step.py --models tiny32k --rows 8 --steps 3 --threads 1
    python benchmarks/train_step.py --models smollm2 --rows 4 --activation-checkpointing
    python benchmarks/train_step.py --models smollm2 --rows 8 --dataset coin-flan-paraphrased  # a real batch

Methods, all on the same synthetic batch (B rows -> B original + B paraphrase views):

* ``plain``: instruction tuning on the same sequences, the standard way: one pass,
  ``model(..., labels=labels).loss`` (full-vocabulary logits at every position).
* ``coin_baseline``: our ``--no-contrastive`` step (one pass, logits at labelled positions only).
* ``coin``: our CoIN step (one pass, labelled logits, pooled final states, symmetric InfoNCE, cap rule),
  with the views packed into rows (``pack_views``, the default).
* ``coin_padded``: the same step with every view padded to the longest (``--no_pack_views``).
* ``coin_hard_negatives``: the same plus one hard-negative view per row (B more sequences).
* ``reference_two_pass``: the approach of the reference code, re-implemented here for comparison: two
  forward passes (original half, paraphrase half), each with full logits and ``output_hidden_states``,
  last-position pooling, InfoNCE, the same cap rule.
* ``reference_two_pass_fused``: the same, given our fused LoRA dropout (``coin_train.lora_dropout``), to
  separate the saving of the CoIN step itself from that of the fused dropout.
* ``coin_top_layers``: the ``coin`` step on a second copy of the model loaded as ``coin-train
  --train_top_layers N`` loads it (``--top-layers``; LoRA adapters on the top N layers only, or the
  layers below frozen): the trunk runs without a graph.

With LoRA (SmolLM2, dropout 0.05 as in the paper) ``plain`` and ``reference_two_pass`` use peft's own
dropout, as a stock setup does; the ``coin*`` methods and ``reference_two_pass_fused`` use the fused one
that ``coin-train`` applies by default.

A step is forward + backward + AdamW update. Time: all methods run in one process, interleaved step by
step (so a busy machine slows them alike); ``step_s`` is the median wall-clock time of ``--steps`` steps
after a warm-up and ``step_cpu_s`` the median process CPU time (with ``--threads 1`` this is the work
done, unaffected by other processes on a shared machine).
Memory: each (model, method) runs in a fresh process; ``peak_rss_mb`` is its peak resident memory over
two steps (Linux ``VmHWM``, reset once the model is loaded and its weights paged in; weights included)
and ``step_mem_mb`` the part above the resident memory before the first step (activations, logits,
gradients, optimizer state).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

METHODS = ("plain", "coin_baseline", "coin", "coin_padded", "coin_hard_negatives", "reference_two_pass",
           "reference_two_pass_fused", "coin_top_layers")
DEFAULT_TOP_LAYERS = 8
TOP_LAYERS = DEFAULT_TOP_LAYERS  # set from --top-layers
STOCK_DROPOUT = ("plain", "reference_two_pass")  # run with peft's own (unfused) LoRA dropout
MODELS = ("tiny32k", "smollm2")
LORA_MODELS = ("smollm2",)


# --- data ------------------------------------------------------------------------------------
def make_rows(n_rows: int, vocab: int, seed: int = 0) -> list[dict]:
    """Encoded rows like ``coin_train.data.encode_dataset`` output, random tokens, FLAN-like lengths."""
    import random

    rng = random.Random(seed)
    tokens = lambda n: [rng.randrange(10, vocab) for _ in range(n)]
    rows = []
    for i in range(n_rows):
        prompt = rng.randint(64, 160)
        target = tokens(rng.randint(2, 24))
        row = {"group_id": i, "negative_group_id": -1}
        for view, n_prompt, answer in (("original", prompt, target),
                                       ("paraphrase", max(8, prompt + rng.randint(-16, 16)), target),
                                       ("negative", prompt, tokens(rng.randint(2, 24)))):
            row[f"{view}_input_ids"] = tokens(n_prompt) + answer
            row[f"{view}_prompt_length"] = n_prompt
        rows.append(row)
    return rows


def dataset_rows(path: str, n_rows: int, vocab: int, seed: int = 0) -> list[dict]:
    """``n_rows`` encoded rows of a real dataset's train split (SmolLM2 tokenizer), shuffled with ``seed``
    as the Trainer would; token ids are folded into ``vocab`` for a smaller model."""
    import random

    from coin_train.data import encode_dataset, load_coin_dataset
    from coin_train.modeling import load_tokenizer, smollm2_path

    train = load_coin_dataset(path)["train"]
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    encoded = encode_dataset(train.select(order[: n_rows * 2]), load_tokenizer(smollm2_path()), max_length=256)
    rows = [dict(encoded[i]) for i in range(n_rows)]
    for row in rows:
        for key, value in row.items():
            if key.endswith("_input_ids"):
                row[key] = [token % vocab for token in value]
    return rows


BF16 = False  # set from --bf16 in main(); read by the workers
DATASET = None  # set from --dataset in main()

# --- models ----------------------------------------------------------------------------------
def build_model(name: str, bf16: bool = False, top_layers: int | None = None):
    """The benchmark model; ``top_layers`` loads it as ``--train_top_layers`` does."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    from coin_train.freezing import freeze_below_top_layers

    if name == "tiny32k":
        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=32000, hidden_size=128, intermediate_size=512, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
        model = LlamaForCausalLM(config)
        if top_layers:
            freeze_below_top_layers(model, min(top_layers, config.num_hidden_layers))
        return model, "full"
    if name == "smollm2":
        from coin_train.config import LoraArguments
        from coin_train.modeling import attach_lora, smollm2_path

        # --bf16: frozen base weights stored in bfloat16 (the usual LoRA setting); the adapters stay float32
        model = AutoModelForCausalLM.from_pretrained(smollm2_path(), dtype=torch.bfloat16 if bf16 else torch.float32)
        lora = LoraArguments(use_lora=True, lora_r=16, lora_alpha=16, lora_dropout=0.05)
        return attach_lora(model, lora, top_layers=top_layers), "lora r=16 q/k/v/o"
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


# --- the steps -------------------------------------------------------------------------------
def reference_two_pass_loss(model, batch, n_rows: int, temperature: float = 0.05, weight: float = 1000.0):
    """Two passes with full logits and all hidden states, last-position pooling (the reference code's shape)."""
    from coin_train.losses import balance_contrastive, info_nce

    gen, pooled = 0.0, []
    for half in (slice(0, n_rows), slice(n_rows, 2 * n_rows)):
        out = model(input_ids=batch["input_ids"][half], attention_mask=batch["attention_mask"][half],
                    position_ids=batch["position_ids"][half], labels=batch["labels"][half],
                    output_hidden_states=True)
        gen = gen + out.loss
        pooled.append(out.hidden_states[-1][:, -1])  # left padding: the last position is the last token
    ctr = info_nce(pooled[0], pooled[1], temperature=temperature)
    return gen + balance_contrastive(gen, ctr, weight)


def step_function(method: str, model, rows: list[dict]):
    from coin_train.lora_dropout import set_fused

    step = _loss_function(method, model, rows)

    def run():
        set_fused(model, method not in STOCK_DROPOUT)
        return step()

    return run


def _loss_function(method: str, model, rows: list[dict]):
    from coin_train.data import CoinCollator
    from coin_train.losses import CoinLoss

    negatives = method == "coin_hard_negatives"
    side = "left" if method.startswith("reference_two_pass") else "right"
    batch = CoinCollator(pad_token_id=0, padding_side=side, include_negatives=negatives)(rows)
    n_rows = len(rows)
    if method == "plain":
        return lambda: model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             position_ids=batch["position_ids"], labels=batch["labels"]).loss
    if method.startswith("reference_two_pass"):
        return lambda: reference_two_pass_loss(model, batch, n_rows)
    loss_fn = CoinLoss(contrastive=method != "coin_baseline", hard_negatives=negatives,
                       pack_views=method != "coin_padded")
    return lambda: loss_fn(model, batch).loss


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _setup(model_name: str, threads: int, checkpointing: bool, n_rows: int, method: str = ""):
    import torch

    torch.set_num_threads(threads)
    model, mode = build_model(model_name, BF16, TOP_LAYERS if method == "coin_top_layers" else None)
    if BF16:
        mode += " + bf16 autocast"
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        mode += " + activation checkpointing"
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    vocab = model.config.vocab_size
    rows = dataset_rows(DATASET, n_rows, vocab) if DATASET else make_rows(n_rows, vocab)
    return model, mode, optimizer, rows


def _train_step(loss_of, optimizer) -> None:
    import torch

    optimizer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16):  # what Trainer's --bf16 does
        loss = loss_of()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def time_worker(model_name: str, methods: list[str], n_rows: int, steps: int, threads: int,
                checkpointing: bool) -> dict:
    """All methods in one process, interleaved step by step, so a busy machine slows them alike."""
    model, mode, optimizer, rows = _setup(model_name, threads, checkpointing, n_rows)
    optimizer_of = {method: optimizer for method in methods}
    steps_of = {method: step_function(method, model, rows) for method in methods if method != "coin_top_layers"}
    if "coin_top_layers" in methods:  # a second copy, loaded as --train_top_layers loads it
        top_model, _, optimizer_of["coin_top_layers"], _ = _setup(model_name, threads, checkpointing, n_rows,
                                                                  "coin_top_layers")
        steps_of["coin_top_layers"] = step_function("coin_top_layers", top_model, rows)
    for method in methods:  # warm-up
        _train_step(steps_of[method], optimizer_of[method])
    wall: dict[str, list[float]] = {method: [] for method in methods}
    cpu: dict[str, list[float]] = {method: [] for method in methods}
    for round_index in range(steps):
        order = methods[round_index % len(methods):] + methods[: round_index % len(methods)]
        for method in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            _train_step(steps_of[method], optimizer_of[method])
            wall[method].append(time.perf_counter() - start)
            cpu[method].append(time.process_time() - start_cpu)
    return {"training": mode,
            "step_s": {m: statistics.median(t) for m, t in wall.items()},
            "step_cpu_s": {m: statistics.median(t) for m, t in cpu.items()},
            "step_s_all": {m: [round(x, 3) for x in t] for m, t in wall.items()},
            "step_cpu_s_all": {m: [round(x, 3) for x in t] for m, t in cpu.items()}}


def memory_worker(model_name: str, method: str, n_rows: int, steps: int, threads: int, checkpointing: bool) -> dict:
    """One method in a fresh process: peak resident memory over two steps (memory does not vary by step)."""
    import torch

    model, mode, optimizer, rows = _setup(model_name, threads, checkpointing, n_rows, method)
    loss_of = step_function(method, model, rows)
    with torch.no_grad():  # page in the weights (from_pretrained maps them lazily): not step memory
        model(input_ids=torch.tensor([rows[0]["original_input_ids"][:8]]))
    rss_before = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the peak-RSS counter (VmHWM) after loading the model
    for _ in range(2):
        _train_step(loss_of, optimizer)
    peak = _status_kb("VmHWM")
    return {"training": mode, "peak_rss_mb": round(peak / 1024, 1),
            "step_mem_mb": round((peak - rss_before) / 1024, 1)}


# --- driver ----------------------------------------------------------------------------------
def _run_worker(args, *worker_args: str, env: dict | None = None) -> dict:
    command = [sys.executable, __file__, "--rows", str(args.rows), "--steps", str(args.steps),
               "--threads", str(args.threads), "--top-layers", str(args.top_layers), *worker_args]
    if args.activation_checkpointing:
        command.append("--activation-checkpointing")
    if args.bf16:
        command.append("--bf16")
    if args.dataset:
        command += ["--dataset", args.dataset]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(worker_args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _paired(results: dict[str, dict], a: str, b: str, key: str) -> float:
    """Median over rounds of time(a) / time(b), the steps of one round being adjacent in time."""
    pairs = zip(results[a][key + "_all"], results[b][key + "_all"])
    return round(statistics.median(x / y for x, y in pairs), 3)


def summarize(results: dict[str, dict]) -> dict:
    """Time ratios from the median wall-clock step (``*_wall``) and from the median per-round ratio of
    process CPU time (``*_cpu``, steady on a shared machine); memory ratios from peak resident memory."""
    ratios = {}
    short = {"reference_two_pass": "reference", "reference_two_pass_fused": "reference_fused"}
    for a, b in (("coin", "plain"), ("coin", "coin_baseline"), ("coin", "coin_padded"), ("coin_top_layers", "coin"),
                 ("reference_two_pass", "coin"), ("reference_two_pass_fused", "coin")):
        if {a, b} <= results.keys() and "step_s" in results[a]:
            name = f"{short.get(a, a)}_time_vs_{b}"
            ratios[name + "_wall"] = round(results[a]["step_s"] / results[b]["step_s"], 3)
            ratios[name + "_cpu"] = _paired(results, a, b, "step_cpu_s")
    for reference in ("reference_two_pass", "reference_two_pass_fused"):
        if {"coin", reference} <= results.keys() and "peak_rss_mb" in results["coin"]:
            ref, coin = results[reference], results["coin"]
            ratios[f"coin_peak_rss_vs_{short[reference]}"] = round(coin["peak_rss_mb"] / ref["peak_rss_mb"], 3)
            ratios[f"coin_step_mem_vs_{short[reference]}"] = round(coin["step_mem_mb"] / max(ref["step_mem_mb"], 1e-9), 3)
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: tiny32k, smollm2")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--rows", type=int, default=8, help="dataset rows per batch (2 views each)")
    parser.add_argument("--steps", type=int, default=3, help="measured steps per method (after a warm-up step)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--activation-checkpointing", action="store_true",
                        help="recompute layer activations in backward (all methods)")
    parser.add_argument("--measure", default="time,memory", help="time, memory, or both")
    parser.add_argument("--bf16", action="store_true",
                        help="bfloat16 autocast (and bfloat16 base weights for the LoRA model), as --bf16 training")
    parser.add_argument("--dataset", help="take the batch from this dataset's train split (e.g. a `coin-data build` "
                                          "folder) instead of random tokens")
    parser.add_argument("--top-layers", type=int, default=DEFAULT_TOP_LAYERS,
                        help="layers trained by the coin_top_layers method (--train_top_layers)")
    parser.add_argument("--time-worker", metavar="MODEL", help=argparse.SUPPRESS)
    parser.add_argument("--memory-worker", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    global BF16, DATASET, TOP_LAYERS
    BF16, DATASET, TOP_LAYERS = args.bf16, args.dataset, args.top_layers
    methods, measures = args.methods.split(","), args.measure.split(",")
    common = (args.rows, args.steps, args.threads, args.activation_checkpointing)
    if args.time_worker:
        print(json.dumps(time_worker(args.time_worker, methods, *common)))
        return
    if args.memory_worker:
        print(json.dumps(memory_worker(*args.memory_worker, *common)))
        return

    report = {"device": "cpu", "threads": args.threads, "rows": args.rows, "steps": args.steps,
              "batch": args.dataset or "random tokens, FLAN-like lengths",
              "activation_checkpointing": args.activation_checkpointing, "bf16": args.bf16,
              "top_layers": args.top_layers,
              "load_average_at_start": os.getloadavg()[0], "models": {}}
    for model_name in args.models.split(","):
        # Without LoRA (tiny32k trains every weight) there is no dropout to fuse: the fused reference is the same
        model_methods = [m for m in methods if m != "reference_two_pass_fused" or model_name in LORA_MODELS]
        results: dict[str, dict] = {method: {} for method in model_methods}
        training = None
        if "time" in measures:
            timing = _run_worker(args, "--time-worker", model_name, "--methods", ",".join(model_methods))
            training = timing["training"]
            for method in model_methods:
                results[method].update(step_s=round(timing["step_s"][method], 3),
                                       step_cpu_s=round(timing["step_cpu_s"][method], 3),
                                       step_s_all=timing["step_s_all"][method],
                                       step_cpu_s_all=timing["step_cpu_s_all"][method])
        if "memory" in measures:
            # Small mmap threshold: glibc returns freed tensors to the OS at once, so resident memory
            # follows live tensors instead of the allocator's high-water heap.
            env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
            for method in model_methods:
                memory = _run_worker(args, "--memory-worker", model_name, method, env=env)
                training = memory.pop("training")
                results[method].update(memory)
        for method, result in results.items():
            print(f"{model_name:8s} {method:20s} {json.dumps(result)}", file=sys.stderr)
        report["models"][model_name] = {"training": training, "results": results, "ratios": summarize(results)}
    report["load_average_at_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
