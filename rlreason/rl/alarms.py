"""Collapse alarm: warn when training shows the reward-hacking modes of a too-high learning rate.

Compares the mean of the last `window` steps with the `window` steps before them:
- `format_up_accuracy_down`: the format reward mean rises by > `delta` while accuracy falls by > `delta`;
- `length_collapse`: mean completion length falls below `length_ratio` of its best window so far;
- `repetition`: the completions' repeated 8-gram share (rollout/repetition) exceeds `max_repetition`.
Each kind is reported once (with its step) and also exposed as a 0/1 metric `alarm/<kind>` on
every step, so dashboards show when the condition holds. It only warns; it never stops a run.
"""

from __future__ import annotations

from collections import deque


class CollapseAlarm:
    def __init__(
        self,
        window: int = 10,
        delta: float = 0.05,
        length_ratio: float = 0.5,
        max_repetition: float = 0.5,
        format_key: str = "reward/format/mean",
    ):
        self.window, self.delta = window, delta
        self.length_ratio, self.max_repetition, self.format_key = (
            length_ratio,
            max_repetition,
            format_key,
        )
        self.hist = {
            k: deque(maxlen=2 * window) for k in ("format", "accuracy", "length", "repetition")
        }
        self.best_length = 0.0
        self.state: dict[str, bool] = dict.fromkeys(
            ("format_up_accuracy_down", "length_collapse", "repetition"), False
        )
        self.fired: list[dict] = []

    def _means(self, key: str):
        h = list(self.hist[key])
        if len(h) < 2 * self.window:
            return None
        w = self.window
        return sum(h[:w]) / w, sum(h[w:]) / w

    def update(self, step: int, metrics: dict[str, float]) -> list[str]:
        for key, name in (
            ("format", self.format_key),
            ("accuracy", "accuracy"),
            ("length", "rollout/length_mean"),
            ("repetition", "rollout/repetition"),
        ):
            if name in metrics:
                self.hist[key].append(float(metrics[name]))
        fmt, acc, length = self._means("format"), self._means("accuracy"), self._means("length")
        reps = list(self.hist["repetition"])[-self.window :]
        checks = {
            "format_up_accuracy_down": bool(
                fmt and acc and fmt[1] - fmt[0] > self.delta and acc[0] - acc[1] > self.delta
            ),
            "length_collapse": bool(
                length and self.best_length > 0 and length[1] < self.length_ratio * self.best_length
            ),
            "repetition": bool(
                len(reps) == self.window and sum(reps) / len(reps) > self.max_repetition
            ),
        }
        if length:
            self.best_length = max(self.best_length, length[1])
        messages = {
            "format_up_accuracy_down": "format reward rises while accuracy falls (format hacking?)",
            "length_collapse": f"completion length fell below {self.length_ratio:.0%} of its best",
            "repetition": "completions are repeating themselves (degenerate reasoning)",
        }
        new = []
        for kind, on in checks.items():
            if on and not any(f["kind"] == kind for f in self.fired):
                self.fired.append({"step": step, "kind": kind, "message": messages[kind]})
                new.append(messages[kind])
            self.state[kind] = on
        return new

    def metrics(self) -> dict[str, float]:
        return {f"alarm/{k}": float(v) for k, v in self.state.items()}
