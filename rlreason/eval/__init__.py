"""Evaluation: metrics (pass@k, maj@k, CIs), the policy evaluation runner, plots."""
