"""Supervised fine-tuning: `{"prompt", "completion"}` JSONL data (data.py), the `sft.*` checks
(checks.py) and the completion-only training loop (trainer.py). The CLI is experiments/sft.py."""
