"""Evaluation throughput: rank classification versus generate-and-parse on the same suite.

    python benchmarks/eval.py --model tiny --model smollm2 --threads 1     # prints one JSON object

Both modes score exactly the same prompts (the default suite, cut down by the options below) with the
same batching; examples/s counts scored prompts (one instruction variant x one example) per second of
``predict_suite``, after one warm-up batch. ``tiny`` is a random-init Llama (hidden 64, 2 layers) with a
byte-level BPE of about 1k tokens trained in-process; ``smollm2`` is the bundled SmolLM2-135M-Instruct
(``coin_train.smollm2_path()``); any other value is a model folder or Hub id.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from coin_train.evaluate import INVALID, ScoringConfig, predict_suite, resolve_model
from coin_train.prompt_format import PromptFormat
from coin_train.suites import SuiteConfig, build_suite


def tiny_model(suite):
    """A random-init Llama and a BPE tokenizer trained on the suite's prompts (no files, no network)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = [v.render(e, t.options) for t in suite.tasks for v in t.instructions for e in t.examples]
    texts += [o for t in suite.tasks for o in t.options] + ["### Response:"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=1000, special_tokens=["<|pad|>", "<|eos|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))  # fmt: skip
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<|pad|>", eos_token="<|eos|>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=None)  # fmt: skip
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval(), tokenizer, PromptFormat()


def load(name: str, suite):
    if name == "tiny":
        return tiny_model(suite)
    from coin_train.modeling import load_for_inference

    return load_for_inference(resolve_model(name))


def measure(model, tokenizer, fmt, suite, scoring: ScoringConfig) -> tuple[dict, float]:
    warm = build_warmup(suite, scoring.batch_size)
    predict_suite(model, tokenizer, fmt, warm, scoring)
    start = time.perf_counter()
    predictions = predict_suite(model, tokenizer, fmt, suite, scoring)
    return predictions, time.perf_counter() - start


def build_warmup(suite, batch_size: int):
    """A copy of the suite's first task cut to one batch of prompts (kernels, caches, allocator warm)."""
    from dataclasses import replace

    task = suite.tasks[0]
    first = [v for v in task.instructions][:1]
    return replace(suite, tasks=[replace(task, instructions=first, examples=task.examples[:batch_size])])


def accuracy(predictions, suite) -> float:
    hits = total = 0
    for task in suite.tasks:
        for by_instruction in predictions[task.name].values():
            for preds in by_instruction.values():
                hits += sum(p == e.label for p, e in zip(preds, task.examples))
                total += len(preds)
    return hits / total


def flat(predictions) -> list[str]:
    return [p for levels in predictions.values() for ids in levels.values() for preds in ids.values() for p in preds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="tiny, smollm2, or a model folder / Hub id (repeatable)")
    parser.add_argument("--tasks", default="sentiment,nli,spam,topic", help="default-suite tasks to score")
    parser.add_argument("--levels", default="clean,sentence")
    parser.add_argument("--max-examples", type=int, default=8)
    parser.add_argument("--max-instructions", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="generate: default longest option + 2")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    suite = build_suite(SuiteConfig(tasks=args.tasks, levels=args.levels, max_examples=args.max_examples,
                                    max_instructions=args.max_instructions))  # fmt: skip
    prompts = sum(len(t.instructions) * len(t.examples) for t in suite.tasks)
    results = []
    for name in args.model or ["tiny", "smollm2"]:
        model, tokenizer, fmt = load(name, suite)
        row = {"model": name, "parameters": sum(p.numel() for p in model.parameters())}
        outputs = {}
        for mode in ("rank", "generate"):
            scoring = ScoringConfig(mode=mode, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
            predictions, seconds = measure(model, tokenizer, fmt, suite, scoring)
            outputs[mode] = flat(predictions)
            row[mode] = {"seconds": round(seconds, 2), "examples_per_second": round(prompts / seconds, 2),
                         "accuracy": round(accuracy(predictions, suite), 4)}  # fmt: skip
        row["generate"]["invalid_rate"] = round(outputs["generate"].count(INVALID) / prompts, 4)
        row["agreement"] = round(sum(a == b for a, b in zip(outputs["rank"], outputs["generate"])) / prompts, 4)
        row["rank_speedup"] = round(row["rank"]["examples_per_second"] / row["generate"]["examples_per_second"], 2)
        results.append(row)
        del model

    print(json.dumps({
        "benchmark": "eval",
        "suite": {"name": suite.name, "tasks": [t.name for t in suite.tasks], "levels": list(suite.levels),
                  "prompts": prompts, "batch_size": args.batch_size},
        "results": results,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
