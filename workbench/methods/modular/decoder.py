"""A small causal text decoder cross-attending to vision (or to the fused streams), with its own
vocabulary (a subset of the tokenizer's ids) and an output layer tied to its input embedding."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .fusion import decoder_layers


class TextDecoder(nn.Module):
    """forward(tokens (B, L) tokenizer ids, memory (B, M, D)) -> hidden (B, L, D); logits(hidden) -> (B, L, V)."""

    def __init__(self, n: int, width: int, heads: int, vocab: list[int], full_vocab: int,
                 token_embedding: torch.Tensor, positional: torch.Tensor, source: nn.Module | None = None):
        super().__init__()
        ids = torch.tensor(sorted(set(vocab)), dtype=torch.long)
        if int(ids.max()) >= full_vocab:
            raise ValueError(f"vocab holds token id {int(ids.max())}; the tokenizer's ids are 0 ... {full_vocab - 1}")
        index = torch.full((full_vocab,), -1, dtype=torch.long)
        index[ids] = torch.arange(len(ids))
        self.register_buffer("vocab_ids", ids, persistent=False)
        self.register_buffer("vocab_index", index, persistent=False)
        self.embed = nn.Embedding(len(ids), width)
        with torch.no_grad():  # start from the text encoder's embeddings of the same tokens
            self.embed.weight.copy_(token_embedding.detach()[ids])
        self.positional = nn.Parameter(positional.detach().clone())
        self.layers = decoder_layers(n, width, heads, source)
        self.norm = nn.LayerNorm(width)

    @property
    def vocab_size(self) -> int:
        return int(self.vocab_ids.numel())

    def to_index(self, tokens: torch.Tensor, key: str = "targets") -> torch.Tensor:
        """Tokenizer ids (B, L) -> decoder vocabulary indices; ValueError naming ids outside the vocabulary."""
        idx = self.vocab_index[tokens]
        if bool((idx < 0).any()):
            bad = sorted(set(tokens[idx < 0].tolist()))[:10]
            raise ValueError(f"{key} hold token ids {bad} outside the decoder's vocabulary of {self.vocab_size} ids "
                             "(ModularConfig.vocab); build the model with a vocab covering the task's texts")
        return idx

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor, memory_padding: torch.Tensor | None = None
                ) -> torch.Tensor:
        """memory_padding (B, M) bool: True where memory holds padding the cross-attention must not read."""
        length = tokens.shape[1]
        x = self.embed(self.to_index(tokens)) + self.positional[:length]
        causal = torch.full((length, length), float("-inf"), dtype=x.dtype, device=x.device).triu_(1)
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=causal, memory_key_padding_mask=memory_padding)
        return self.norm(x)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.embed.weight.T

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, pad: int = 0) -> torch.Tensor:
        """Next-token cross-entropy: logits (B, L-1, V) from targets[:, :-1] against targets[:, 1:], pads ignored."""
        nxt = targets[:, 1:]
        idx = self.to_index(nxt).masked_fill(nxt == pad, -100)
        return F.cross_entropy(logits.flatten(0, 1), idx.flatten(), ignore_index=-100)

    @torch.no_grad()
    def generate(self, memory: torch.Tensor, start: int, end: int, length: int,
                 memory_padding: torch.Tensor | None = None) -> torch.Tensor:
        """Greedy decoding -> tokenizer ids (B, length): start, ..., end, then 0 padding."""
        b = memory.shape[0]
        out = torch.zeros(b, length, dtype=torch.long, device=memory.device)
        out[:, 0] = start
        done = torch.zeros(b, dtype=torch.bool, device=memory.device)
        for t in range(1, length):
            nxt = self.vocab_ids[self.logits(self(out[:, :t], memory, memory_padding)[:, -1]).argmax(-1)]
            out[:, t] = torch.where(done, torch.zeros_like(nxt), nxt)
            done |= nxt == end
            if bool(done.all()):
                break
        return out
