"""The order both trainers draw their training items in: a seeded permutation per epoch.

`EpochOrder(n, seed).index(pos)` is the item at data position `pos` (epoch `pos // n`, shuffled
by `random.Random(seed * 1_000_003 + epoch)`); only the current epoch's permutation is kept. The
trainers checkpoint the data position alone, so a resumed run draws the same items.

Not here: what an item is (prompts for RL, sequences for SFT), batching.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class EpochOrder:
    n: int  # items per epoch
    seed: int
    _cached: tuple[int, list[int]] = field(default=(-1, []), repr=False)  # (epoch, permutation)

    def index(self, pos: int) -> int:
        epoch, i = divmod(pos, self.n)
        if self._cached[0] != epoch:
            order = list(range(self.n))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            self._cached = (epoch, order)
        return self._cached[1][i]

    def take(self, items, pos: int, k: int) -> list:
        """`items` at data positions pos, pos + 1, ..., pos + k - 1."""
        return [items[self.index(p)] for p in range(pos, pos + k)]
