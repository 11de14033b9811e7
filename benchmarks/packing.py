"""How many positions a CoIN batch spends on padding, padded vs packed (``pack_views``), on a real dataset.
Prints JSON.

    coin-data build --out /tmp/coin                  # the embedded default dataset
    python benchmarks/packing.py --dataset /tmp/coin --rows 8

Every batch of ``--rows`` rows of the train split (shuffled with ``--seed``, as the Trainer does) is
tokenized with the SmolLM2 tokenizer and laid out by ``CoinCollator`` (original, paraphrase and hard-negative
views, padded to the longest) and by ``coin_train.packing.pack_views`` (views end to end in rows of up to
1.5 times the longest). Reported: positions per batch (the work and activation memory of every layer scale with
them), the share of them that is padding, and attention work (sum of squared row lengths).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="coin-flan-paraphrased", help="dataset folder or Hub id")
    parser.add_argument("--rows", type=int, default=8, help="rows per batch (the Trainer's default is 8)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from coin_train.data import CoinCollator, encode_dataset, load_coin_dataset
    from coin_train.modeling import load_tokenizer, smollm2_path
    from coin_train.packing import pack_views

    tokenizer = load_tokenizer(smollm2_path())
    try:
        train = load_coin_dataset(args.dataset)["train"]
    except FileNotFoundError as err:
        sys.exit(f"{args.dataset}: no dataset there ({err}); make one with `coin-data build --out {args.dataset}`")
    encoded = encode_dataset(train, tokenizer, max_length=args.max_length)
    order = list(range(len(encoded)))
    random.Random(args.seed).shuffle(order)
    collate = CoinCollator(tokenizer.pad_token_id)
    stats = {"real": [], "padded": [], "packed": [], "attention_padded": [], "attention_packed": []}
    for start in range(0, len(order) - args.rows + 1, args.rows):
        batch = collate([encoded[i] for i in order[start : start + args.rows]])
        packed = pack_views(batch["input_ids"], batch["attention_mask"])
        views, length = batch["input_ids"].shape
        rows, row_length = packed.input_ids.shape
        stats["real"].append(int(batch["attention_mask"].sum()))
        stats["padded"].append(views * length)
        stats["packed"].append(rows * row_length)
        stats["attention_padded"].append(views * length**2)
        stats["attention_packed"].append(rows * row_length**2)
    total = {key: sum(values) for key, values in stats.items()}
    print(json.dumps({
        "dataset": args.dataset, "train_rows": len(encoded), "rows_per_batch": args.rows, "batches": len(stats["real"]),
        "mean_positions_per_batch": {key: round(statistics.mean(stats[key]), 1) for key in ("real", "padded", "packed")},
        "padding_share_padded": round(1 - total["real"] / total["padded"], 3),
        "padding_share_packed": round(1 - total["real"] / total["packed"], 3),
        "packed_positions_vs_padded": round(total["packed"] / total["padded"], 3),
        "packed_attention_vs_padded": round(total["attention_packed"] / total["attention_padded"], 3),
    }, indent=2))


if __name__ == "__main__":
    main()
