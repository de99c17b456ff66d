"""The RL loop's console progress bar: tqdm on the main rank when `train.progress`, else a no-op.

Not here: the metrics it shows (rl/trainer.py picks them), logging (rlreason/tracking.py).
"""

from __future__ import annotations


class NoBar:
    """The progress bar's interface, doing nothing (disabled, or a rank other than 0)."""

    def update(self, n):
        pass

    def set_postfix(self, **kw):
        pass

    def close(self):
        pass


def progress(enabled: bool, start: int, total: int):
    """A tqdm bar over `total` steps starting at `start`, or a `NoBar` when not `enabled`."""
    if not enabled:
        return NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc="rl", dynamic_ncols=True, leave=True)
