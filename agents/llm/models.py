"""Chat model selection: parse `--llm` strings, check them before a run, load them, size them.

One concern over three providers (LangChain's init_chat_model, HF Inference, the local GGUF
pipeline): each spec's parse, check, load and context size belong together, hence its length.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from postlab.tools.models.resolution import DEFAULT_MODEL, ModelResolutionError, resolve_model

LOCAL_MODELS = {"smollm2": DEFAULT_MODEL, DEFAULT_MODEL: DEFAULT_MODEL}
HF_TOKEN_ENV = ("HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN")
# Environment variables each provider reads its key from (any one of them will do).
KEY_ENV: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "google_genai": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    "groq": ("GROQ_API_KEY",),
    "mistralai": ("MISTRAL_API_KEY",),
    "fireworks": ("FIREWORKS_API_KEY",),
    "together": ("TOGETHER_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "cohere": ("COHERE_API_KEY",),
    "perplexity": ("PPLX_API_KEY", "PERPLEXITY_API_KEY"),
    "openrouter": ("OPENROUTER_API_KEY",),
    "azure_openai": ("AZURE_OPENAI_API_KEY",),
    "upstage": ("UPSTAGE_API_KEY",),
    "nvidia": ("NVIDIA_API_KEY",),
    "huggingface": HF_TOKEN_ENV,
}
# Context sizes by model-name prefix, longest match first; unknown models get the default.
CONTEXT_WINDOWS = {
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-5": 400_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4": 200_000,
    "claude": 200_000,
    "gemini": 1_000_000,
    "llama-3": 128_000,
    "meta-llama/llama-3": 128_000,
    "qwen/qwen2.5": 32_768,
    "qwen/qwen3": 32_768,
    "mistral": 32_768,
    "deepseek": 64_000,
    "smollm2": 8_192,
}
DEFAULT_CONTEXT = 8_192
# List prices in USD per million (input, output) tokens where known; None elsewhere.
PRICES = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "smollm2": (0.0, 0.0),
    "scripted": (0.0, 0.0),
}


# How long one call to a hosted chat model may take, and how often its provider retries it.
CALL_TIMEOUT_S = 120.0
PROVIDER_RETRIES = 2
# A local CPU model answers slowly: a longer call, one re-ask, a short prompt.
LOCAL_CALL_TIMEOUT_S = 300.0


class LLMConfigError(ValueError):
    """An `--llm` choice that cannot work here: bad string, missing package or key."""


class LLMSpec(BaseModel):
    """A chat model choice: `provider:model`, `hf:<repo>` or `local:smollm2`."""

    kind: Literal["provider", "hf", "local"]
    provider: str
    model: str
    context_window: int | None = Field(None, ge=512)

    @classmethod
    def parse(cls, text: str, context_window: int | None = None) -> LLMSpec:
        """Parse a model string; an unknown provider or bare unknown name is an LLMConfigError."""
        from langchain.chat_models.base import _BUILTIN_PROVIDERS, _attempt_infer_model_provider

        text = (text or "").strip()
        prefix, sep, rest = text.partition(":")
        if sep and prefix == "local":
            if rest.lower() not in LOCAL_MODELS:
                raise LLMConfigError(f"unknown local model {rest!r}; use local:smollm2")
            return cls(
                kind="local", provider="local", model="smollm2", context_window=context_window
            )
        if sep and prefix == "hf":
            if "/" not in rest:
                raise LLMConfigError(f"hf:<repo> needs an owner/name repo id, got {rest!r}")
            return cls(kind="hf", provider="huggingface", model=rest, context_window=context_window)
        provider = prefix.replace("-", "_").lower() if sep else None
        if provider is None:
            provider, rest = _attempt_infer_model_provider(text), text
        if not rest or provider not in _BUILTIN_PROVIDERS:
            known = ", ".join(sorted(_BUILTIN_PROVIDERS))
            raise LLMConfigError(
                f"cannot read --llm {text!r}: use provider:model (providers: {known}), "
                "hf:<owner/repo> or local:smollm2"
            )
        return cls(kind="provider", provider=provider, model=rest, context_window=context_window)

    def __str__(self) -> str:
        prefix = {"local": "local", "hf": "hf"}.get(self.kind, self.provider)
        return f"{prefix}:{self.model}"


def as_spec(spec: LLMSpec | str) -> LLMSpec:
    """A spec from a spec or a model string."""
    return spec if isinstance(spec, LLMSpec) else LLMSpec.parse(spec)


def _need_package(module: str, spec: LLMSpec) -> None:
    if importlib.util.find_spec(module) is None:
        package = module.replace("_", "-")
        raise LLMConfigError(
            f"--llm {spec} needs the {package} package, which is not installed "
            f"(pip install {package})"
        )


def _need_key(names: Sequence[str], spec: LLMSpec) -> None:
    if not any(os.environ.get(name) for name in names):
        raise LLMConfigError(f"--llm {spec} needs an API key: set {' or '.join(names)}")


def check_llm(spec: LLMSpec | str) -> None:
    """Fail fast, before a run starts, when a model cannot be loaded here."""
    spec = as_spec(spec)
    if spec.kind == "local":
        _need_package("transformers", spec)
        try:
            resolve_model(LOCAL_MODELS[spec.model])
        except ModelResolutionError as error:
            raise LLMConfigError(f"--llm {spec}: {error}") from error
        return
    if spec.kind == "hf":
        _need_package("langchain_huggingface", spec)
        _need_key(HF_TOKEN_ENV, spec)
        return
    from langchain.chat_models.base import _BUILTIN_PROVIDERS

    _need_package(_BUILTIN_PROVIDERS[spec.provider][0].split(".")[0], spec)
    if spec.provider in KEY_ENV:
        _need_key(KEY_ENV[spec.provider], spec)


def load_chat_model(
    spec: LLMSpec | str, timeout_s: float = CALL_TIMEOUT_S, max_retries: int = PROVIDER_RETRIES
) -> BaseChatModel:
    """The chat model for a spec, with per-call timeout and provider retries where supported."""
    spec = as_spec(spec)
    check_llm(spec)
    if spec.kind == "local":
        return _local_model(spec.model)
    if spec.kind == "hf":
        from langchain_huggingface import ChatHuggingFace, HuggingFaceEndpoint

        token = next(os.environ[n] for n in HF_TOKEN_ENV if os.environ.get(n))
        endpoint = HuggingFaceEndpoint(
            repo_id=spec.model,
            task="text-generation",
            max_new_tokens=1024,
            timeout=int(timeout_s),
            huggingfacehub_api_token=token,
        )
        return ChatHuggingFace(llm=endpoint)
    from langchain.chat_models import init_chat_model

    model_id = f"{spec.provider}:{spec.model}"
    try:
        return init_chat_model(model_id, timeout=timeout_s, max_retries=max_retries)
    except (TypeError, ValueError):
        # Some integrations name these settings differently; their defaults still apply.
        return init_chat_model(model_id)


def context_window(spec: LLMSpec | str, override: int | None = None) -> int:
    """The context size (tokens) to budget prompts for: configured, known, or a safe default."""
    spec = as_spec(spec)
    if override or spec.context_window:
        return int(override or spec.context_window)
    name = spec.model.lower()
    for prefix in sorted(CONTEXT_WINDOWS, key=len, reverse=True):
        if name.startswith(prefix) or name.split("/")[-1].startswith(prefix):
            return CONTEXT_WINDOWS[prefix]
    return DEFAULT_CONTEXT


def cost_usd(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """Approximate cost from list prices, or None when the model's price is unknown."""
    name = model.lower().split(":")[-1].split("/")[-1]
    for prefix in sorted(PRICES, key=len, reverse=True):
        if name.startswith(prefix):
            price_in, price_out = PRICES[prefix]
            return round((input_tokens * price_in + output_tokens * price_out) / 1e6, 6)
    return None


_TOOL_PREFIX = '{"tool": "'
_TOOL_HELP = 'Reply with one JSON tool call: {"tool": "<name>", "args": {...}}. Tools: '


def _local_chat_class():
    from langchain_huggingface import ChatHuggingFace

    class LocalChatModel(ChatHuggingFace):
        """ChatHuggingFace over a local pipeline, with tool calls as JSON replies."""

        def _prompt(self, messages: list[BaseMessage], tools: list[dict] | None) -> str:
            rows = [_chatml(m) for m in messages]
            if tools:
                listing = "; ".join(_signature(t) for t in tools)
                rows.insert(0, {"role": "system", "content": _TOOL_HELP + listing})
            if rows[-1]["role"] != "user":
                rows.append({"role": "user", "content": "Continue."})
            prompt = self.tokenizer.apply_chat_template(
                rows, tokenize=False, add_generation_prompt=True
            )
            # A small model keeps to the format far better when its reply is already begun.
            return prompt + (_TOOL_PREFIX if tools else "")

        def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
            tools = kwargs.pop("tools", None)
            prompt = self._prompt(messages, tools)
            result = self.llm._generate(prompts=[prompt], stop=stop, run_manager=run_manager)
            text = (_TOOL_PREFIX if tools else "") + result.generations[0][0].text
            message = _parse_tool_reply(text, {t["function"]["name"] for t in tools or []})
            n_in, n_out = (len(self.tokenizer(x).input_ids) for x in (prompt, text))
            message.usage_metadata = {
                "input_tokens": n_in,
                "output_tokens": n_out,
                "total_tokens": n_in + n_out,
            }
            return ChatResult(generations=[ChatGeneration(message=message)])

        def bind_tools(self, tools, *, tool_choice=None, **kwargs: Any):
            return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    return LocalChatModel


def _signature(tool: dict) -> str:
    function = tool["function"]
    params = ", ".join(function.get("parameters", {}).get("properties", {}))
    return f"{function['name']}({params})"


def _chatml(message: BaseMessage) -> dict[str, str]:
    text = message.content if isinstance(message.content, str) else json.dumps(message.content)
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": text}
    if isinstance(message, ToolMessage):
        return {"role": "user", "content": f"Result of {message.name}: {text}"}
    if isinstance(message, AIMessage):
        calls = [{"tool": c["name"], "args": c["args"]} for c in message.tool_calls]
        return {"role": "assistant", "content": json.dumps(calls[0]) if calls else text}
    return {"role": "user", "content": text}


def _parse_tool_reply(text: str, tool_names: set[str]) -> AIMessage:
    """A tool call when the reply names a known tool (arguments when they parse), else text."""
    if not tool_names or not text.startswith(_TOOL_PREFIX):
        return AIMessage(content=text)
    try:
        payload, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError:
        payload = {"tool": text[len(_TOOL_PREFIX) :].split('"', 1)[0]}
    name = payload.get("tool") if isinstance(payload, dict) else None
    if not isinstance(name, str) or not name:
        return AIMessage(content=text)
    # An unknown tool name still becomes a call, so the agent loop tells the model what exists.
    args = payload.get("args") if isinstance(payload.get("args"), dict) else {}
    call_id = f"call_{abs(hash(text)) % 10**8}"
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


@functools.lru_cache(maxsize=2)
def _local_model(name: str, max_new_tokens: int = 64) -> BaseChatModel:
    # Loading the pipeline takes seconds: one per process, shared by every agent.
    import transformers
    from langchain_huggingface import HuggingFacePipeline

    path = resolve_model(LOCAL_MODELS[name]).path
    pipe = transformers.pipeline(
        "text-generation",
        model=path,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        return_full_text=False,
    )
    llm = HuggingFacePipeline(pipeline=pipe, model_id=path)
    return _local_chat_class()(llm=llm, tokenizer=pipe.tokenizer, model_id="smollm2")
