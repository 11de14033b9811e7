"""lm-evaluation-harness's Hugging Face log-likelihood scoring of given token ids, timed (run by eval.py).

Runs in lm-eval's own environment (lm-eval is not a dependency of this project), so it imports neither
coin_data nor coin_train. It reads a JSON file of requests, ``{"model": folder, "batch_size": int,
"threads": int, "requests": [[context_ids, continuation_ids], ...]}``, scores them with
``HFLM._loglikelihood_tokens`` (the engine behind lm-eval's ``loglikelihood`` requests, given exactly the
prompt and option tokens CoIN scores, so both sides see the same tokens), and prints one JSON object:
``{"seconds", "cpu_seconds", "log_likelihoods"}`` (the time of the scoring call only, after a warm-up
batch; model loading excluded).

    /tmp/lmeval/bin/python benchmarks/lm_eval_worker.py requests.json
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    spec = json.loads(open(sys.argv[1], encoding="utf-8").read())
    import torch

    torch.set_num_threads(spec["threads"])
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=spec["model"], device="cpu", dtype="float32", batch_size=spec["batch_size"])
    requests = [(("", ""), context, continuation) for context, continuation in spec["requests"]]
    lm._loglikelihood_tokens(requests[: spec["batch_size"]], disable_tqdm=True)  # warm-up, as on CoIN's side
    wall, cpu = time.perf_counter(), time.process_time()
    scores = lm._loglikelihood_tokens(requests, disable_tqdm=True)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"seconds": wall, "cpu_seconds": cpu, "log_likelihoods": [float(s) for s, _ in scores]}))


if __name__ == "__main__":
    main()
