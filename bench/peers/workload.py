#!/usr/bin/python3
"""Writes the workload of GPTCache's peer harness (../shared/peers/gptcache_bench.py)
to a TSV file, so that promptcache's peer_bench runs exactly the same prompts.

The harness is imported, not copied: its make_prompt / make_answer / perturb
functions are called with the same seed in the same order as its main().

usage: workload.py --peers DIR --n N --out FILE
FILE lines: kind<TAB>index<TAB>text, kind in prompt, answer, unseen, perturbed
(perturbed lines carry the index of the prompt they reword).
"""
import argparse
import random
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--peers", required=True, help="directory holding gptcache_bench.py")
ap.add_argument("--n", type=int, default=10000)
ap.add_argument("--out", required=True)
args = ap.parse_args()
sys.path.insert(0, args.peers)
import gptcache_bench as h  # noqa: E402

rng = random.Random(42)
prompts, seen = [], set()
while len(prompts) < args.n:
    p = h.make_prompt(rng)
    if p not in seen:
        seen.add(p)
        prompts.append(p)
answers = [h.make_answer(rng) for _ in range(args.n)]
unseen = []
while len(unseen) < args.n:
    p = h.make_prompt(rng)
    if p not in seen:
        unseen.append(p)
order = list(range(args.n))
rng.shuffle(order)
perturbed = [h.perturb(rng, prompts[i]) for i in order]

for text in prompts + answers + unseen + perturbed:
    if "\t" in text or "\n" in text:
        sys.exit("workload text holds a tab or newline")
with open(args.out, "w") as f:
    for i, p in enumerate(prompts):
        f.write(f"prompt\t{i}\t{p}\n")
    for i, a in enumerate(answers):
        f.write(f"answer\t{i}\t{a}\n")
    for i, u in enumerate(unseen):
        f.write(f"unseen\t{i}\t{u}\n")
    for i, p in zip(order, perturbed):
        f.write(f"perturbed\t{i}\t{p}\n")
