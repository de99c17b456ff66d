"""Task environments: pure-Python producers of `Task`s (built-in synthetic tasks and JSONL files)."""
