"""The built-in tiny base model of the demo: its pretraining corpus and recipe (not an env)."""
