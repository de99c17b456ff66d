"""`HFTokenizer`: a real checkpoint's `tokenizer.json` behind the `CharTokenizer` interface.

Reads a Hugging Face tokenizer directory: `tokenizer.json` (required, loaded with `tokenizers`),
`tokenizer_config.json` (special tokens, chat template), `chat_template.jinja`,
`generation_config.json` and `config.json` (EOS ids). `eos_ids` lists every EOS id those files
name (chat models stop on several); `pad_id` falls back to `eos_id` (padding is always masked).
`encode` adds no BOS/EOS by default; special-token strings in the text are single tokens.
`encode_prompt` is for prompts: it puts the BOS token in front when the tokenizer adds one
(`adds_bos`), unless the text already starts with the BOS token's string (a rendered chat
template often does), so a prompt never gets two. `adds_bos` follows what transformers 5 does:
the `post_processor` of tokenizer.json decides (BOS when encoding with special tokens puts the
`bos_token` first); `add_bos_token` in tokenizer_config.json counts only when tokenizer.json has
no post-processor (transformers 5 then adds nothing; its 4.x Llama/Gemma classes honoured the
flag, and checkpoints that set it were trained with a BOS). `decode` always drops pad and every
EOS id, like `CharTokenizer`. `apply_chat_template` renders the Jinja template in `jinja2`'s immutable sandbox
with the same options and helpers as transformers, so renders match.

Not here: training tokenizers, `{% generation %}` assistant masks, multimodal processors.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"HFTokenizer: {path} is not valid JSON: {e}") from e


def _token_str(value: Any) -> str | None:
    """tokenizer_config.json stores special tokens as a string or an AddedToken dict."""
    if isinstance(value, dict):
        return value.get("content")
    return value


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, list) else [int(value)]


def _chat_template(directory: Path, config: dict) -> str | None:
    jinja_file = directory / "chat_template.jinja"
    if jinja_file.is_file():
        return jinja_file.read_text()
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": ..., "template": ...}]
        named = {t["name"]: t["template"] for t in template}
        return named.get("default")
    return template


class HFTokenizer:
    kind = "hf"

    def __init__(self, directory: str | Path):
        from tokenizers import Tokenizer

        self.directory = d = Path(directory)
        path = d / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"HFTokenizer: {path} is missing (a Hugging Face tokenizer "
                "directory needs tokenizer.json)"
            )
        self._tok = Tokenizer.from_file(str(path))
        self.config = _read_json(d / "tokenizer_config.json")
        self.chat_template = _chat_template(d, self.config)
        self.special_tokens = {
            k: _token_str(self.config.get(k))
            for k in ("bos_token", "eos_token", "pad_token", "unk_token")
        }
        model_eos = _ids(_read_json(d / "generation_config.json").get("eos_token_id")) + _ids(
            _read_json(d / "config.json").get("eos_token_id")
        )
        own_eos = self._optional_id("eos_token")
        self.eos_ids = list(dict.fromkeys(([own_eos] if own_eos is not None else []) + model_eos))
        if not self.eos_ids:
            raise ValueError(
                f"HFTokenizer: no EOS token in {d} (tokenizer_config.json eos_token, "
                "generation_config.json or config.json eos_token_id)"
            )
        pad = self._optional_id("pad_token")
        self._pad_id = pad if pad is not None else self.eos_ids[0]
        self._drop = {*self.eos_ids, self._pad_id}
        self.bos_id = self._optional_id("bos_token")
        self.bos_token = self.special_tokens["bos_token"] if self.bos_id is not None else None
        self.adds_bos = self.bos_id is not None and self._adds_bos()
        self._template = None

    @classmethod
    def load(cls, directory: str | Path) -> HFTokenizer:
        return cls(directory)

    def _optional_id(self, key: str) -> int | None:
        token = self.special_tokens.get(key)
        if token is None:
            return None
        tid = self._tok.token_to_id(token)
        if tid is None:
            raise ValueError(
                f"HFTokenizer: tokenizer_config.json {key}={token!r} is not in the "
                "vocabulary of tokenizer.json"
            )
        return tid

    def _adds_bos(self) -> bool:
        if self._tok.post_processor is None:
            return bool(self.config.get("add_bos_token", False))
        probe = "a"
        with_specials = self._tok.encode(probe, add_special_tokens=True).ids
        plain = self._tok.encode(probe, add_special_tokens=False).ids
        return with_specials[:1] == [self.bos_id] and plain[:1] != [self.bos_id]

    # ids ------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def eos_id(self) -> int:
        return self.eos_ids[0]

    @property
    def pad_id(self) -> int:
        return self._pad_id

    @property
    def eos_tokens(self) -> list[str]:
        """The token string of every EOS id, in `eos_ids` order."""
        return [self._tok.id_to_token(i) for i in self.eos_ids]

    @property
    def added_tokens_decoder(self) -> dict:
        """id -> `tokenizers.AddedToken` of every added (special) token, as in transformers."""
        return self._tok.get_added_tokens_decoder()

    def token_id(self, token: str) -> int:
        tid = self._tok.token_to_id(token)
        if tid is None:
            raise KeyError(
                f"HFTokenizer.token_id: {token!r} is not a single token of this vocabulary"
            )
        return tid

    # encode / decode ------------------------------------------------------------------------
    def encode(
        self, text: str, add_special_tokens: bool = False, add_eos: bool = False
    ) -> list[int]:
        ids = self._tok.encode(text, add_special_tokens=add_special_tokens).ids
        return ids + [self.eos_id] if add_eos else ids

    def encode_prompt(self, text: str) -> list[int]:
        """Ids of a prompt: `encode(text)` behind the BOS id when `adds_bos` and the text does not
        already start with the BOS token's string. Completions never get a BOS."""
        ids = self.encode(text)
        if self.adds_bos and not text.startswith(self.bos_token):
            return [self.bos_id, *ids]
        return ids

    def decode(self, ids, skip_special: bool = False) -> str:
        kept = [int(i) for i in ids if int(i) not in self._drop]
        return self._tok.decode(kept, skip_special_tokens=skip_special)

    # chat template --------------------------------------------------------------------------
    def apply_chat_template(
        self,
        messages: list[dict],
        add_generation_prompt: bool = True,
        tokenize: bool = False,
        **kwargs,
    ):
        """Render `messages` with the checkpoint's template; token ids when `tokenize`."""
        if self.chat_template is None:
            raise ValueError(
                f"HFTokenizer: {self.directory} has no chat template "
                "(tokenizer_config.json chat_template or chat_template.jinja)"
            )
        if self._template is None:
            self._template = _compile(self.chat_template)
        context = {k: v for k, v in self.special_tokens.items() if v is not None}
        text = self._template.render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            tools=None,
            documents=None,
            **{**context, **kwargs},
        )
        return self.encode(text) if tokenize else text

    # persistence ----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Copy the tokenizer files next to a saved model."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            src = self.directory / name
            if src.is_file() and src.resolve() != (out / name).resolve():
                shutil.copyfile(src, out / name)
        return out / "tokenizer.json"


def _compile(template: str):
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)
