"""The built-in ``hf`` inference backend: a transformers causal LM sampled with a KV cache, on CPU or CUDA.

Batching. Requests whose ``temperature``, ``top_p``, ``top_k``, ``min_p`` and ``repetition_penalty`` are equal are
generated together as one left-padded batch (split into chunks of ``max_batch_size`` rows when the backend config
sets it); ``max_tokens``, ``stop`` and ``stop_token_ids`` are per row. Prompts are left-padded, position ids are
``cumsum(attention_mask) - 1`` (clamped at 0), one prefill forward fills a ``DynamicCache``, then one token per step
is fed with the attention mask grown by one column. Finished rows are dropped from the batch and the cache.

Sampling, per step, from the float32 logits of the last position:

1. repetition penalty (1.0 = off), CTRL-style over the prompt and the tokens generated so far: the logit of every
   token already seen is divided by the penalty when positive and multiplied by it otherwise;
2. temperature ``T``: logits / T; ``T == 0`` means greedy, the argmax of the (penalised) logits, no draw;
3. top_k (-1 or 0 = off), then top_p (1.0 = off), then min_p (0 = off), each applied to what the previous one kept;
4. one draw with ``torch.multinomial`` from the engine's ``torch.Generator``, seeded once with ``seed`` at
   construction: two engines built with the same seed and given the same calls sample the same tokens.

Log-prob convention (see :mod:`skyrl_core.inference.base`): the log-prob of a sampled token is
``log_softmax(logits / T)`` at that token over the model's *full* distribution, before the repetition penalty and
before any top-k/top-p/min-p truncation, with ``T = 1`` when ``T == 0``; this is what the trainer recomputes with one
forward pass over prompt + completion.

Stopping: a row stops with ``"stop"`` when it samples an EOS id (the tokenizer's and the generation config's) or one
of its ``stop_token_ids``, or when the decoded text of its generated tokens comes to contain one of its ``stop``
strings; the token that did it is included. It stops with ``"length"`` after ``max_tokens`` tokens. Stop strings are
matched on ``tokenizer.decode(..., skip_special_tokens=False)`` of only the last few tokens (enough to hold the
longest stop string), so checking costs O(1) per step.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from skyrl_core.inference.base import (
    GenerationRequest,
    GenerationResult,
    InferenceEngine,
    SamplingParams,
    StopReason,
)

# Extra tokens decoded in front of the longest stop string, for tokenizers that drop a leading space.
_STOP_WINDOW_SLACK = 2


@attrs.define
class _Row:
    """One request while it is being generated."""

    prompt: list[int]
    sampling: SamplingParams
    stop_ids: frozenset[int]
    stops: list[str]
    window: int
    tokens: list[int] = attrs.field(factory=list)
    logprobs: list[float] = attrs.field(factory=list)
    stop_reason: StopReason | None = None


class HFEngine(InferenceEngine):
    """A Hugging Face ``AutoModelForCausalLM`` held in eval mode, generating with a KV cache.

    ``config`` (the ``generator.hf`` section, a mapping or an object, or ``None``) may set ``max_batch_size``.
    """

    supports_cpu = True

    def __init__(
        self,
        *,
        model_path: str,
        dtype: str = "float32",
        seed: int = 0,
        config: Any = None,
        device: str | None = None,
    ) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=_torch_dtype(dtype))
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        self.pad_id = next(i for i in (self.tokenizer.pad_token_id, *sorted(self.eos_ids), 0) if i is not None)
        self.max_batch_size: int | None = _config_get(config, "max_batch_size")
        self.generator = torch.Generator(self.device).manual_seed(seed)
        params = inspect.signature(self.model.forward).parameters
        # Recent transformers 5 releases name the cache argument ``cache`` (``past_key_values`` deprecated).
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._asleep = False

    # -- generation ---------------------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        self._check_usable()
        rows = [self._new_row(request) for request in requests]
        for batch in self._batches(rows):
            self._generate_batch(batch)
        return [
            GenerationResult(token_ids=row.tokens, logprobs=row.logprobs, stop_reason=row.stop_reason or "length")
            for row in rows
        ]

    def _new_row(self, request: GenerationRequest) -> _Row:
        if not request.prompt_token_ids:
            raise ValueError("HFEngine.generate: a request has an empty prompt")
        sampling = request.sampling
        stops = [s for s in sampling.stop or () if s]
        return _Row(
            prompt=list(request.prompt_token_ids),
            sampling=sampling,
            stop_ids=self.eos_ids | frozenset(sampling.stop_token_ids or ()),
            stops=stops,
            window=max((len(s.encode()) for s in stops), default=0) + _STOP_WINDOW_SLACK,
        )

    def _batches(self, rows: list[_Row]) -> Iterator[list[_Row]]:
        """Rows grouped by their distribution-shaping parameters, in chunks of at most ``max_batch_size``."""
        groups: dict[tuple, list[_Row]] = {}
        for row in rows:
            if row.sampling.max_tokens > 0:
                s = row.sampling
                key = (s.temperature, s.top_p, s.top_k, s.min_p, s.repetition_penalty)
                groups.setdefault(key, []).append(row)
        for group in groups.values():
            size = self.max_batch_size or len(group)
            for start in range(0, len(group), size):
                yield group[start : start + size]

    def _generate_batch(self, rows: list[_Row]) -> None:
        params = rows[0].sampling
        seen = None
        if params.repetition_penalty != 1.0:
            ids, mask = self._left_pad([row.prompt for row in rows])
            # Counting, not scattering booleans, so that a pad id that is also a real prompt token stays seen.
            seen = torch.zeros(len(rows), self.model.config.vocab_size, dtype=torch.long, device=self.device)
            seen = seen.scatter_add_(1, ids, mask).bool()
        cache = DynamicCache(config=self.model.config)
        logits, mask = self._prefill(rows, cache)
        while True:
            tokens, logprobs = _sample(logits, params, seen, self.generator)
            sampled = zip(rows, tokens.tolist(), logprobs.tolist(), strict=True)
            keep = [i for i, (row, tok, lp) in enumerate(sampled) if self._append(row, tok, lp) is None]
            if not keep:
                return
            if len(keep) < len(rows):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                tokens, mask = tokens[index], mask[index]
                seen = None if seen is None else seen[index]
                rows = [rows[i] for i in keep]
            if seen is not None:
                seen[torch.arange(len(rows), device=self.device), tokens] = True
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
            logits = self._forward(tokens[:, None], mask, mask.sum(-1, keepdim=True) - 1, cache)

    def _prefill(self, rows: list[_Row], cache: DynamicCache) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefill each distinct prompt once, then copy its KV cache and logits to every row that shares it.

        GRPO repeats every prompt ``n_samples_per_prompt`` times; prefilling the distinct prompts only is exact
        (the same tokens give the same keys and values) and divides the prefill work by the group size.
        """
        distinct: dict[tuple[int, ...], int] = {}
        owner = [distinct.setdefault(tuple(row.prompt), len(distinct)) for row in rows]
        ids, mask = self._left_pad([list(prompt) for prompt in distinct])
        logits = self._forward(ids, mask, (mask.cumsum(-1) - 1).clamp(min=0), cache)
        if len(distinct) < len(rows):
            index = torch.tensor(owner, device=self.device)
            cache.batch_select_indices(index)
            logits, mask = logits[index], mask[index]
        return logits, mask

    def _left_pad(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[i, width - len(prompt) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _forward(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: DynamicCache
    ) -> torch.Tensor:
        """Run ids through the model, extending ``cache``; the float32 logits of the last position."""
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_arg: cache},
        )
        return out.logits[:, -1, :].float()

    def _append(self, row: _Row, token: int, logprob: float) -> StopReason | None:
        """Record a sampled token; set and return the row's stop reason if it is now finished."""
        row.tokens.append(token)
        row.logprobs.append(logprob)
        if token in row.stop_ids or (row.stops and self._has_stop_string(row)):
            row.stop_reason = "stop"
        elif len(row.tokens) >= row.sampling.max_tokens:
            row.stop_reason = "length"
        return row.stop_reason

    def _has_stop_string(self, row: _Row) -> bool:
        # Every token decodes to at least one byte, so a stop string completed by the newest token lies within the
        # last ``len(stop in bytes)`` tokens; an earlier completion would have stopped the row already.
        tail = self.tokenizer.decode(
            row.tokens[-row.window :], skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        return any(stop in tail for stop in row.stops)

    # -- memory and weights -------------------------------------------------------------------------------------

    def sleep(self) -> None:
        """On CUDA, move the weights to CPU and empty the CUDA cache.

        On CPU there is nothing to release (the KV cache lives only inside a :meth:`generate` call), so this only
        marks the engine asleep.
        """
        self._check_usable()
        if self.device.type == "cuda":
            self.model.to("cpu")
            torch.cuda.empty_cache()
        self._asleep = True

    def wake_up(self) -> None:
        if self.model is None:
            raise RuntimeError("HFEngine has been shut down")
        self.model.to(self.device)
        self._asleep = False

    def parameter_specs(self) -> list[tuple[str, tuple[int, ...], str]]:
        """``(name, shape, dtype)`` of each ``state_dict`` entry; a tied tensor is listed under its first name only."""
        self._check_model()
        specs, seen = [], set()
        for name, tensor in self.model.state_dict(keep_vars=True).items():
            if id(tensor) not in seen:
                seen.add(id(tensor))
                specs.append((name, tuple(tensor.shape), str(tensor.dtype)))
        return specs

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        """Copy tensors in place into the parameters/buffers of the same ``state_dict`` name (tied names included)."""
        self._check_model()
        targets = self.model.state_dict(keep_vars=True)
        with torch.no_grad():
            for name, tensor in named_tensors:
                if name not in targets:
                    raise KeyError(f"HFEngine.load_weights: the model has no weight named {name!r}")
                target, tensor = targets[name], torch.as_tensor(tensor)
                if tuple(tensor.shape) != tuple(target.shape):
                    raise ValueError(
                        f"HFEngine.load_weights: {name!r} has shape {tuple(tensor.shape)}, "
                        f"expected {tuple(target.shape)}"
                    )
                target.copy_(tensor.to(device=target.device, dtype=target.dtype))

    def state_dict(self) -> dict[str, Any]:
        """A CPU copy of every ``state_dict`` entry (tied names included)."""
        self._check_model()
        return {name: t.detach().to("cpu", copy=True) for name, t in self.model.state_dict().items()}

    def shutdown(self) -> None:
        self.model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _check_model(self) -> None:
        if self.model is None:
            raise RuntimeError("HFEngine has been shut down")

    def _check_usable(self) -> None:
        self._check_model()
        if self._asleep:
            raise RuntimeError("HFEngine is asleep: call wake_up() before generate()")


def _sample(
    logits: torch.Tensor, params: SamplingParams, seen: torch.Tensor | None, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one token per row; return the tokens and their log-probs under the full tempered distribution."""
    temperature = params.temperature if params.temperature > 0 else 1.0
    logprobs = torch.log_softmax(logits / temperature, dim=-1)
    if seen is not None:
        logits = _penalise(logits, seen, params.repetition_penalty)
    if params.temperature == 0:
        tokens = logits.argmax(dim=-1)
    else:
        scaled = _truncate(logits / temperature, params.top_k, params.top_p, params.min_p)
        tokens = torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=generator).squeeze(-1)
    return tokens, logprobs.gather(-1, tokens[:, None]).squeeze(-1)


def _penalise(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL repetition penalty: seen tokens' logits divided by ``penalty`` when positive, multiplied otherwise."""
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def _truncate(scaled: torch.Tensor, top_k: int, top_p: float, min_p: float) -> torch.Tensor:
    """Set to -inf the logits removed by top-k, then top-p, then min-p (each off at its neutral value)."""
    if 0 < top_k < scaled.shape[-1]:
        kth = torch.topk(scaled, top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = scaled.sort(dim=-1, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        drop_ordered = probs.cumsum(dim=-1) - probs >= top_p  # the mass before this token already reaches top_p
        drop = torch.empty_like(drop_ordered).scatter_(-1, order, drop_ordered)
        scaled = scaled.masked_fill(drop, float("-inf"))
    if min_p > 0.0:
        probs = torch.softmax(scaled, dim=-1)
        scaled = scaled.masked_fill(probs < min_p * probs.max(dim=-1, keepdim=True).values, float("-inf"))
    return scaled


def _torch_dtype(dtype: str | torch.dtype) -> str | torch.dtype:
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"HFEngine: unknown dtype {dtype!r} (use e.g. 'float32', 'bfloat16', 'float16', 'auto')")
    return resolved


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """EOS ids of the tokenizer and of the model's generation config."""
    ids = {tokenizer.eos_token_id}
    generation_config = getattr(model, "generation_config", None)
    configured = getattr(generation_config, "eos_token_id", None)
    ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return frozenset(i for i in ids if i is not None)


def _config_get(config: Any, key: str) -> Any:
    if config is None:
        return None
    if isinstance(config, Mapping):
        return config.get(key)
    return getattr(config, key, None)
