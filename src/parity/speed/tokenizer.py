"""Local token counts: the model's own tokenizer, read from its GGUF file.

The server's `usage` is what a provider bills; a local count of the same text with the
model's tokenizer says whether that bill adds up. The tokenizer is read from the GGUF file
with llama.cpp (`llama_cpp.Llama(..., vocab_only=True)`: no weights loaded), and prompts are
rendered with the chat template stored in the same file, so a prompt's count is comparable to
`usage.prompt_tokens`. With `transformers` installed, a tokenizer directory (with
`tokenizer.json`) works too. Neither installed: "no local tokenizer", and the bench goes on
without local counts.

`--tokenizer auto` (the default) uses the GGUF of the local fleet's model for providers that
serve it (model name `smollm2-135m-instruct`), and nothing for others.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

__all__ = ["LocalTokenizer", "TokenizerChoice", "choose_tokenizer", "load_tokenizer"]


class LocalTokenizer(Protocol):
    """Counts tokens the way the model does."""

    name: str

    def count_text(self, text: str) -> int:
        """Tokens of generated text (no special tokens added)."""
        ...

    def count_prompt(self, messages: list[dict[str, Any]]) -> int | None:
        """Prompt tokens of a conversation with the chat template; None without a template."""
        ...


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """llama.cpp logs to fd 2 from C even with verbose=False; silence it while loading."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class GGUFTokenizer:
    """The tokenizer and chat template of a GGUF file, through llama.cpp (vocab only)."""

    def __init__(self, path: Path) -> None:
        """Load the vocabulary of `path` (fast: no weights); raises on an unreadable file."""
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.path = path
        self.name = f"gguf:{path.name}"
        with _quiet_fd2():
            self._llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        self._lock = threading.Lock()
        metadata = self._llm.metadata
        self._add_bos = metadata.get("tokenizer.ggml.add_bos_token", "false") == "true"
        template = metadata.get("tokenizer.chat_template")
        self._formatter: Any = None
        if template:
            bos = self._piece(self._llm.token_bos())
            eos = self._piece(self._llm.token_eos())
            self._formatter = Jinja2ChatFormatter(
                template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True
            )

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llm.detokenize([token], special=True).decode(errors="replace")

    def count_text(self, text: str) -> int:
        """Tokens of `text` as generated output (no BOS, special tokens not parsed)."""
        if not text:
            return 0
        with self._lock:
            return len(self._llm.tokenize(text.encode(), add_bos=False, special=False))

    def count_prompt(self, messages: list[dict[str, Any]]) -> int | None:
        """Tokens of the conversation rendered with the GGUF's chat template."""
        if self._formatter is None:
            return None
        prompt = self._formatter(messages=messages).prompt
        with self._lock:
            tokens = self._llm.tokenize(prompt.encode(), add_bos=self._add_bos, special=True)
        return len(tokens)


class HFTokenizer:
    """A `transformers` tokenizer directory (tokenizer.json, optional chat template)."""

    def __init__(self, path: Path) -> None:
        """Load the tokenizer in `path` (offline); raises when transformers cannot."""
        from transformers import AutoTokenizer  # type: ignore[import-not-found, unused-ignore]

        self.path = path
        self.name = f"hf:{path.name}"
        self._tok: Any = AutoTokenizer.from_pretrained(str(path), local_files_only=True)

    def count_text(self, text: str) -> int:
        """Tokens of `text` without special tokens."""
        return len(self._tok.encode(text, add_special_tokens=False)) if text else 0

    def count_prompt(self, messages: list[dict[str, Any]]) -> int | None:
        """Tokens of the conversation with the tokenizer's chat template, if it has one."""
        if not getattr(self._tok, "chat_template", None):
            return None
        ids = self._tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        if isinstance(ids, dict):
            ids = ids["input_ids"]
        return len(ids)


def load_tokenizer(path: Path) -> LocalTokenizer:
    """A tokenizer from a `.gguf` file (needs llama-cpp-python) or a tokenizer directory
    (needs transformers); raises ValueError saying what is missing."""
    if path.is_file() and path.suffix == ".gguf":
        if importlib.util.find_spec("llama_cpp") is None:
            raise ValueError("reading a GGUF tokenizer needs llama-cpp-python (parity[local])")
        return GGUFTokenizer(path)
    if path.is_dir():
        if importlib.util.find_spec("transformers") is None:
            raise ValueError(f"{path}: a tokenizer directory needs transformers installed")
        return HFTokenizer(path)
    raise ValueError(f"{path}: not a .gguf file or a tokenizer directory")


class TokenizerChoice:
    """Which local tokenizer (if any) counts tokens for which provider."""

    def __init__(self, tokenizer: LocalTokenizer | None, models: set[str] | None, note: str):
        self.tokenizer = tokenizer
        self.models = models  # None: every provider
        self.note = note

    def for_model(self, model: str) -> LocalTokenizer | None:
        """The tokenizer for a provider serving `model`, or None."""
        if self.tokenizer is None:
            return None
        if self.models is not None and model not in self.models:
            return None
        return self.tokenizer


def choose_tokenizer(spec: str) -> TokenizerChoice:
    """`none`, `auto` (the local fleet's GGUF, for providers serving the fleet's model) or a
    path (a .gguf file or a tokenizer directory, for every provider). Never raises: a
    tokenizer that cannot be loaded becomes "no local tokenizer" with the reason."""
    if spec == "none":
        return TokenizerChoice(None, None, "no local tokenizer (--tokenizer none)")
    if spec == "auto":
        try:
            from parity.local.model import MODEL_ALIAS, shipped_model_path

            path = shipped_model_path()
            if importlib.util.find_spec("llama_cpp") is None:
                raise ValueError("llama-cpp-python is not installed")
            tokenizer = GGUFTokenizer(path)
        except Exception as exc:  # the local extra is optional: degrade, say why
            return TokenizerChoice(None, None, f"no local tokenizer ({exc})")
        return TokenizerChoice(
            tokenizer, {MODEL_ALIAS}, f"local tokenizer {tokenizer.name} for {MODEL_ALIAS}"
        )
    try:
        loaded = load_tokenizer(Path(spec))
    except Exception as exc:
        return TokenizerChoice(None, None, f"no local tokenizer ({exc})")
    return TokenizerChoice(loaded, None, f"local tokenizer {loaded.name}")
