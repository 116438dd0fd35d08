"""`ModularModel`: mPLUG-2's modules around a dual encoder's towers, and one call, `run(task, batch, path)`,
that runs any valid path of modules for a task.

    model = ModularModel.from_backend(load_model(TINY_NAME), ModularConfig(shared_layers=2))
    out = model.run("image_retrieval", {"images": x, "text": tokens})             # default path
    out = model.run("qa", batch, path=("vision", "temporal", "text", "fusion"))   # no universal layers
    out.embeddings["image"], out.logits, out.loss
"""
from __future__ import annotations

import hashlib
from typing import Mapping, NamedTuple, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from workbench.models.base import ClipBackend

from .config import ModularConfig
from .decoder import TextDecoder
from .fusion import FusionLayers
from .heads import ClassifierHead, ContrastiveHead, QAHead
from .tasks import HEADS, MODULES, TaskSpec, check_path, check_task
from .text import TextEncoder, TextStates
from .universal import UniversalLayers
from .vision import VisionEncoder

BATCH_KEYS: tuple[str, ...] = ("images", "clips", "text", "targets")


class TaskOutput(NamedTuple):
    task: str
    path: tuple[str, ...]
    head: str
    embeddings: dict[str, torch.Tensor]  # "image" | "video" | "text" -> (B, E) L2-normalised, where the path makes them
    logits: torch.Tensor | None  # retrieval (B, B) media x text; classifier (B, C); qa (B, A); lm (B, L-1, V)
    loss: torch.Tensor | None  # retrieval: InfoNCE over the batch's pairs; others: cross-entropy when targets are given


class Memory(NamedTuple):
    """What the decoder and the QA head read along a path."""

    tokens: torch.Tensor  # (B, M, D): [fused text | vision] when the path fuses, else vision
    padding: torch.Tensor | None  # (B, M) bool, True at the fused text's padding; None without fusion
    fused: torch.Tensor | None  # (B, L, D) the fused text tokens


class VisualTokens(NamedTuple):
    """A path's visual tokens and how many frames they hold (1: images, or clips averaged over time)."""

    tokens: torch.Tensor  # (B, frames * (1 + N), width)
    frames: int


def module_seed(seed: int, name: str) -> int:
    """The seed of module `name`'s own random stream, forked from the model's `seed` (a stable hash)."""
    return int.from_bytes(hashlib.sha256(f"{int(seed)}/{name}".encode()).digest()[:8], "little") >> 1


class ModularModel(nn.Module):
    """Vision encoder (+ temporal modules), text encoder whose last k blocks are the universal layers,
    fusion layers, text decoder and heads; see the package docstring for the paths."""

    def __init__(self, vision: VisionEncoder, text: TextEncoder, logit_scale: nn.Parameter, tokenizer,
                 config: ModularConfig):
        super().__init__()
        k = config.depth(text.depth)
        self.config = config
        self.shared_layers = k
        self.vision, self.text = vision, text
        self._tokenizer = tokenizer
        empty = self.tokenize([""])[0]
        self.start_id, self.end_id = int(empty[0]), int(empty[1])
        embed_v, embed_t = self._embed_dims()
        if embed_v != embed_t:
            raise ValueError(f"the vision tower embeds in {embed_v} dimensions, the text tower in {embed_t}; "
                             "the contrastive head needs one embedding space")
        full = text.token_embedding.num_embeddings
        vocab = list(config.vocab) if config.vocab is not None else list(range(full))
        heads = text.heads
        vision.temporal_cls = config.temporal_cls

        def stream(name: str) -> None:  # every new module from its own stream: (seed, name) decide its draws
            torch.manual_seed(module_seed(config.seed, name))

        with torch.random.fork_rng(devices=[]):
            if config.temporal:
                stream("temporal")
                vision.build_temporal()
            stream("universal")
            self.universal = UniversalLayers(list(text.blocks[text.depth - k:]), vision.width, text.width,
                                             config.latents, config.routing, shared=config.shared_weights)
            stream("bridge")
            self.bridge = nn.Sequential(nn.LayerNorm(vision.width), nn.Linear(vision.width, text.width))
            source = text.blocks[-1]
            stream("fusion")
            self.fusion = FusionLayers(config.fusion_layers, text.width, heads, source)
            stream("decoder")
            self.decoder = TextDecoder(config.decoder_layers, text.width, heads,
                                       vocab + [0, self.start_id, self.end_id], full,
                                       text.token_embedding.weight, text.positional, source)
            stream("heads")
            self.heads = nn.ModuleDict({
                "contrastive": ContrastiveHead(logit_scale),
                "classifier": ClassifierHead(embed_v, config.classes),
                "qa": QAHead(text.width, config.answers),
            })

    @classmethod
    def from_backend(cls, backend: ClipBackend, config: ModularConfig | None = None,
                     text: ClipBackend | TextEncoder | None = None) -> ModularModel:
        """The modules around `backend`'s towers (its weights and modules, not copies: copy the backend
        first to keep it). `text` takes the text tower from elsewhere: another backend, or a
        `TextEncoder.from_hf(...)` of a Hugging Face text model (the scale path); tokens still come
        from `backend`'s tokenizer."""
        config = config or ModularConfig()
        if not isinstance(config, ModularConfig):
            raise TypeError(f"config must be a ModularConfig, got {type(config).__name__}")
        vision = VisionEncoder.from_backend(backend, temporal=False)  # the model adds them under its seed
        if text is None:
            text = TextEncoder.from_backend(backend)
        elif isinstance(text, ClipBackend):
            text = TextEncoder.from_backend(text)
        return cls(vision, text, backend.logit_scale, backend.tokenizer, config)

    def _embed_dims(self) -> tuple[int, int]:
        with torch.no_grad():
            v = self.vision.pool(torch.zeros(1, 2, self.vision.width))
            t = self.text._project(torch.zeros(1, self.text.width))
        return v.shape[-1], t.shape[-1]

    # -- names ---------------------------------------------------------------------
    def module(self, name: str) -> nn.Module:
        """A module or head by name (MODULES, then "contrastive", "classifier", "qa"; "lm" is the decoder)."""
        table = {"vision": self.vision, "temporal": self.vision.temporal, "universal": self.universal,
                 "text": self.text, "fusion": self.fusion, "decoder": self.decoder, "lm": self.decoder,
                 **dict(self.heads.items())}
        if name not in table:
            raise ValueError(f"unknown module {name!r}; accepted: {', '.join(MODULES + HEADS)}")
        if table[name] is None:
            raise ValueError(f"module {name!r} was not built (ModularConfig(temporal=False))")
        return table[name]

    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Texts -> token ids (B, L) with the backend's tokenizer."""
        return self._tokenizer([texts] if isinstance(texts, str) else list(texts))

    @property
    def tokenizer(self):
        return self._tokenizer

    # -- running a path ----------------------------------------------------------
    def run(self, task: str, batch: Mapping[str, torch.Tensor], path: Sequence[str] | None = None) -> TaskOutput:
        """Run `task` along `path` (None: the task's default, `TASKS[task].path`)."""
        spec = check_task(task)
        path = check_path(task, path)
        key, media = self._media(spec, path, batch)
        tokens = self._vision_tokens(media, path)
        if spec.head == "contrastive":
            return self._retrieval(spec, path, key, tokens, batch)
        if spec.head == "classifier":
            return self._classification(spec, path, key, tokens, batch.get("targets"))
        if spec.name == "captioning":
            return self._captioning(spec, path, tokens, batch)
        return self._qa(spec, path, tokens, batch)

    def _media(self, spec: TaskSpec, path: tuple[str, ...], batch) -> tuple[str, torch.Tensor]:
        if not isinstance(batch, Mapping):
            raise TypeError(f"batch must be a dict with keys among {', '.join(BATCH_KEYS)}, got {type(batch).__name__}")
        bad = [k for k in batch if k not in BATCH_KEYS]
        if bad:
            raise ValueError(f"unknown batch key {bad[0]!r}; accepted: {', '.join(BATCH_KEYS)}")
        accepted = spec.inputs[0].split("|")
        given = [k for k in ("images", "clips") if k in batch]
        if len(given) != 1 or given[0] not in accepted:
            raise ValueError(f"task {spec.name!r} takes {' or '.join(accepted)} (one of them); "
                             f"the batch has {', '.join(batch) or 'nothing'}")
        key = given[0]
        if "temporal" in path and key != "clips":
            raise ValueError(f"path {' -> '.join(path)} has 'temporal', which needs clips (B, T, 3, S, S) with "
                             "T >= 2; the batch has images: use a path without 'temporal'")
        if "text" in spec.inputs and "text" not in batch:
            raise ValueError(f"task {spec.name!r} needs batch['text'], token ids (B, L) from model.tokenize")
        return key, batch[key]

    def _vision_tokens(self, media: torch.Tensor, path: tuple[str, ...]) -> VisualTokens:
        """(B, 1 + N, width) tokens of images, or of clips averaged over time; with `frame_tokens` a clip's
        every frame, (B, T * (1 + N), width); then through the universal layers when the path has them."""
        temporal = "temporal" in path
        if media.ndim == 5 and self.config.frame_tokens:
            x = self.vision.frame_tokens(media, temporal)  # (B, T, 1 + N, width)
            out = VisualTokens(x.flatten(1, 2), x.shape[1])
        else:
            out = VisualTokens(self.vision.tokens(media, temporal=temporal), 1)
        return out._replace(tokens=self.universal(out.tokens)) if "universal" in path else out

    def _pool(self, visual: VisualTokens) -> torch.Tensor:
        """The tower's embedding (B, E) of the (time-averaged) tokens."""
        x = visual.tokens
        if visual.frames > 1:
            x = x.unflatten(1, (visual.frames, -1)).mean(dim=1)
        return self.vision.pool(x)

    def encode_text(self, tokens: torch.Tensor) -> TextStates:
        """The text encoder (its last k blocks the universal layers; with unshared copies, its own blocks)."""
        return self.text.encode(tokens, self.universal if self.universal.shared else None)

    def _retrieval(self, spec, path, key, tokens, batch) -> TaskOutput:
        v = F.normalize(self._pool(tokens), dim=-1)
        t = F.normalize(self.encode_text(batch["text"]).pooled, dim=-1)
        if len(v) != len(t):
            raise ValueError(f"retrieval pairs media i with text i: {len(v)} media but {len(t)} texts")
        logits, loss = self.heads["contrastive"](v, t)
        return TaskOutput(spec.name, path, spec.head, {_modality(key): v, "text": t}, logits, loss)

    def _classification(self, spec, path, key, tokens, targets) -> TaskOutput:
        v = F.normalize(self._pool(tokens), dim=-1)
        logits = self.heads["classifier"](v)
        return TaskOutput(spec.name, path, spec.head, {_modality(key): v}, logits, _class_loss(logits, targets))

    def _memory(self, path, visual: VisualTokens, text: torch.Tensor | None) -> Memory:
        """What the decoder (and QA head) read: vision tokens in text width, preceded by the fused text when
        the path fuses; the fused text's padding positions are masked out of the decoder's cross-attention."""
        mem = self.bridge(visual.tokens)
        if "fusion" not in path:
            return Memory(mem, None, None)
        states = self.encode_text(text)
        fused = self.fusion(states.tokens, states.padding, mem)
        padding = torch.cat([states.padding, states.padding.new_zeros(mem.shape[:2])], dim=1)
        return Memory(torch.cat([fused, mem], dim=1), padding, fused)

    def _captioning(self, spec, path, tokens, batch) -> TaskOutput:
        targets = batch.get("targets")
        if not isinstance(targets, torch.Tensor) or targets.ndim != 2:
            raise ValueError("captioning needs batch['targets'], caption token ids (B, L), for teacher forcing; "
                             "model.generate(batch) captions without them")
        m = self._memory(path, tokens, self._prompt(batch, len(tokens.tokens)))
        logits = self.decoder.logits(self.decoder(targets[:, :-1], m.tokens, m.padding))
        return TaskOutput(spec.name, path, spec.head, {}, logits, self.decoder.loss(logits, targets))

    def _qa(self, spec, path, tokens, batch) -> TaskOutput:
        m = self._memory(path, tokens, batch["text"])
        memory, fused = m.tokens, m.fused
        targets = batch.get("targets")
        if "decoder" in path and isinstance(targets, torch.Tensor) and targets.ndim == 2:  # answers as text
            logits = self.decoder.logits(self.decoder(targets[:, :-1], memory, m.padding))
            return TaskOutput(spec.name, path, "lm", {}, logits, self.decoder.loss(logits, targets))
        if "decoder" in path:  # the decoder's first state, read by the answer classifier
            start = torch.full((len(memory), 1), self.start_id, dtype=torch.long, device=memory.device)
            state = self.decoder(start, memory, m.padding)[:, 0]
        else:  # the fused end-of-text token
            state = fused[torch.arange(len(fused), device=fused.device), batch["text"].argmax(-1)]
        logits = self.heads["qa"](state)
        return TaskOutput(spec.name, path, spec.head, {}, logits, _class_loss(logits, targets))

    def answer_scores(self, batch: Mapping[str, torch.Tensor], answers: torch.Tensor,
                      path: Sequence[str] | None = None) -> torch.Tensor:
        """QA by ranking candidate answers with the decoder (how mPLUG-2's authors score answers): the
        log-likelihood of each candidate's tokens (after the start token, the end token included) given
        the question fused with the clip -> (B, A). `answers`: the candidates' token ids (A, L) from
        `model.tokenize`; the path must end in the decoder. (Evaluation: call it under torch.no_grad().)"""
        spec = check_task("qa")
        path = check_path("qa", path)
        if "decoder" not in path:
            raise ValueError(f"ranking answers needs the decoder; path {' -> '.join(path)} has none")
        if not isinstance(answers, torch.Tensor) or answers.ndim != 2 or answers.dtype != torch.long:
            raise ValueError("answers must be candidate token ids (A, L), a long tensor from model.tokenize")
        _, media = self._media(spec, path, {k: v for k, v in batch.items() if k != "targets"})
        m = self._memory(path, self._vision_tokens(media, path), batch["text"])
        length = int((answers != 0).sum(1).max())  # start ... end, then padding
        cand = answers[:, :length].to(m.tokens.device)
        b, a = len(m.tokens), len(cand)
        tokens = cand.repeat(b, 1)  # (B * A, L): item-major
        memory = m.tokens.repeat_interleave(a, dim=0)
        padding = None if m.padding is None else m.padding.repeat_interleave(a, dim=0)
        logp = self.decoder.logits(self.decoder(tokens[:, :-1], memory, padding)).log_softmax(-1)
        nxt = tokens[:, 1:]
        idx = self.decoder.to_index(nxt, "answers")
        ll = logp.gather(-1, idx.unsqueeze(-1)).squeeze(-1).masked_fill(nxt == 0, 0.0)
        return ll.sum(-1).view(b, a)

    def _prompt(self, batch, n: int) -> torch.Tensor:
        if "text" in batch:
            return batch["text"]
        return self.tokenize([""]).expand(n, -1).to(self.decoder.vocab_ids.device)

    @torch.no_grad()
    def generate(self, batch: Mapping[str, torch.Tensor], path: Sequence[str] | None = None,
                 length: int | None = None) -> torch.Tensor:
        """Greedy captions for batch["images" | "clips"] -> token ids (B, length) (start ... end, 0 padding);
        `model.tokenizer.decode` reads them."""
        spec = check_task("captioning")
        path = check_path("captioning", path)
        _, media = self._media(spec, path, {k: v for k, v in batch.items() if k != "targets"})
        tokens = self._vision_tokens(media, path)
        m = self._memory(path, tokens, self._prompt(batch, len(tokens.tokens)))
        return self.decoder.generate(m.tokens, self.start_id, self.end_id, length or self.text.context_length,
                                     m.padding)


def _modality(key: str) -> str:
    return "video" if key == "clips" else "image"


def _class_loss(logits: torch.Tensor, targets) -> torch.Tensor | None:
    if targets is None:
        return None
    if not isinstance(targets, torch.Tensor) or targets.ndim != 1 or targets.dtype != torch.long:
        raise ValueError(f"targets must be class indices, a long tensor (B,), got "
                         f"{tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__}")
    if len(targets) != len(logits) or (targets.numel() and not 0 <= int(targets.min()) <= int(targets.max())
                                       < logits.shape[-1]):
        raise ValueError(f"targets: {len(targets)} indices for {len(logits)} items, accepted values "
                         f"0 ... {logits.shape[-1] - 1}")
    return F.cross_entropy(logits, targets)
