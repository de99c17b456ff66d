"""Placeholder entry point; replaced by the Hydra trainer app."""


def main() -> None:  # pragma: no cover - replaced when the trainer lands
    from experiments.bench import demo
    demo()
