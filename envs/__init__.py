"""Task environments: pure-Python producers of `Task`s (built-in synthetic tasks and JSONL files).

- `envs.base`: `Task`, the `Env` protocol, the `ENVS` registry and `build_env(name, **kwargs)`;
- `envs.arithmetic`, `envs.countdown`, `envs.code`, `envs.multilingual`: built-in synthetic envs;
- `envs.jsonl`: GSM8K / MATH / code-with-tests files; `envs.templates`: prompt templates;
- `envs.tags`: the one parser of `<think>`, `<answer>` and `\\boxed{}` (rewards read tags here);
- `envs.preview`: print an env's rendered prompts, validate a JSONL file (`python -m envs.preview`).

Env modules are imported lazily, on first `build_env` of their name.
"""

from envs.base import ENVS, Env, Task, TaskSet, build_env, register_env

__all__ = ["ENVS", "Env", "Task", "TaskSet", "build_env", "register_env"]
