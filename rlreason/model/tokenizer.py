"""Character-level tokenizer for the built-in tasks.

Ids 0..6 are special tokens: `<pad>`, `<eos>`, `<unk>`, `<think>`, `</think>`, `<answer>`,
`</answer>`; the four tags are single tokens so the policy emits a tag in one step and stop strings
are one id long. The rest of the vocabulary is a fixed alphabet (printable ASCII plus newline by
default, or built from a corpus with `from_texts`). A character outside the alphabet encodes to
`<unk>` (documented lossy behaviour, never an exception, so one odd prompt cannot stop a run).

`save(dir)` / `load(dir)` write and read `tokenizer.json` beside the model weights.

This vocabulary has no BOS token: `encode_prompt` (for prompts) is `encode`.

Not here: BPE tokenizers of real checkpoints (`rlreason.model.hf.tokenizer` wraps those with the
same interface: `encode`, `encode_prompt`, `decode`, `eos_id`, `eos_ids`, `pad_id`, `vocab_size`).
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

SPECIAL_TOKENS = ("<pad>", "<eos>", "<unk>", "<think>", "</think>", "<answer>", "</answer>")
DEFAULT_ALPHABET = "".join(ch for ch in string.printable if ch not in "\t\r\x0b\x0c")


class CharTokenizer:
    kind = "char"

    def __init__(self, alphabet: str = DEFAULT_ALPHABET):
        chars = list(dict.fromkeys(alphabet))  # de-duplicate, keep order
        self.alphabet = "".join(chars)
        self.itos: list[str] = list(SPECIAL_TOKENS) + chars
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}
        self.special_ids = set(range(len(SPECIAL_TOKENS)))
        pattern = "|".join(re.escape(t) for t in sorted(SPECIAL_TOKENS, key=len, reverse=True))
        self._split = re.compile(f"({pattern})")

    @classmethod
    def from_texts(cls, texts, base: str = DEFAULT_ALPHABET) -> CharTokenizer:
        """Alphabet = `base` plus every other character seen in `texts` (specials excluded)."""
        seen = dict.fromkeys(base)
        probe = cls(base)
        for text in texts:
            for part in probe._split.split(text):
                if part not in SPECIAL_TOKENS:
                    seen.update(dict.fromkeys(part))
        return cls("".join(seen))

    # ids of the special tokens ------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def pad_id(self) -> int:
        return self.stoi["<pad>"]

    @property
    def eos_id(self) -> int:
        return self.stoi["<eos>"]

    @property
    def eos_ids(self) -> list[int]:
        """Every id that ends a completion: `<eos>` only."""
        return [self.eos_id]

    @property
    def unk_id(self) -> int:
        return self.stoi["<unk>"]

    def token_id(self, token: str) -> int:
        return self.stoi[token]

    # encode / decode -----------------------------------------------------------------------
    def encode(self, text: str, add_eos: bool = False) -> list[int]:
        ids: list[int] = []
        for part in self._split.split(text):
            if part in SPECIAL_TOKENS:
                ids.append(self.stoi[part])
            else:
                ids.extend(self.stoi.get(ch, self.unk_id) for ch in part)
        if add_eos:
            ids.append(self.eos_id)
        return ids

    def encode_prompt(self, text: str) -> list[int]:
        """Ids of a prompt (the interface of `HFTokenizer.encode_prompt`; no BOS here)."""
        return self.encode(text)

    def decode(self, ids, skip_special: bool = False) -> str:
        """Text of `ids`; `<pad>`/`<eos>` are always dropped, tags kept unless `skip_special`."""
        out = []
        for i in ids:
            i = int(i)
            if i in (self.pad_id, self.eos_id) or (skip_special and i in self.special_ids):
                continue
            if not 0 <= i < len(self.itos):
                raise ValueError(
                    f"CharTokenizer.decode: id {i} outside vocabulary of {len(self.itos)}"
                )
            out.append(self.itos[i])
        return "".join(out)

    # persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "special_tokens": list(SPECIAL_TOKENS),
            "alphabet": self.alphabet,
        }

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / "tokenizer.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> CharTokenizer:
        path = Path(directory)
        path = path / "tokenizer.json" if path.is_dir() else path
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"CharTokenizer.load: cannot read {path}: {e}") from e
        if data.get("kind") != cls.kind or tuple(data.get("special_tokens", ())) != SPECIAL_TOKENS:
            raise ValueError(f"CharTokenizer.load: {path} is not a char tokenizer of this version")
        return cls(data["alphabet"])
