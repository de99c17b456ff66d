"""The seed's routes to a reasoning model, side by side (`experiment=r1_routes_tiny`, job=routes).

One command runs, in one run directory, every stage the routes need (stages.py), then evaluates
every route the same way (greedy, pass@1, maj@4, best-of-4, beam 4 on the same held-out problems)
and writes `routes.md`, `routes.json` and accuracy-vs-compute curves (table.py):

- `base`, `student_base`: the starting points (the built-in base; the student: half its layers);
- `pure_rl`: R1-Zero, RL with accuracy + format rewards from the base;
- `sft_rl`: SFT of the base on `pure_rl`'s rejection-sampled traces (cold start), then RL;
- `distill_sft`: the student fine-tuned on the same traces (DeepSeek's distillation: SFT on
  generated data);
- `distill_onpolicy`: the student trained by on-policy distillation from `pure_rl`'s policy;
- `r1` (opt-in, `routes.routes=[..., r1]`): DeepSeek-R1's second round after `sft_rl`: traces of
  `sft_rl`'s policy, SFT of the base on them, then a final RL stage.

Compute is charged inclusively: a route spends what its own stages spent plus the stages it needs
(`sft_rl` and both distillations need `pure_rl` and its traces), so routes compare end to end.

Not here: the stages' own work (experiments/train.py, sft.py, sample.py, eval.py).
"""

from experiments.routes.job import run

__all__ = ["run"]
