"""One transformer encoder block, built from Linear, LayerNorm and softmax pieces.

Task: does a sequence of 10 tokens (vocabulary 8) contain token 1 immediately followed
by token 2? Attention has to relate neighbouring positions to answer. The block is
written out (multi-head self-attention, residuals, LayerNorm, a ReLU feed-forward) rather
than taken from nn.TransformerEncoder, which torch.fx would show as one opaque node.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

TRAINING = {"lr": 0.005, "epochs": 60, "batch_size": 32, "optimizer": "adam"}

VOCAB, LENGTH, DIM, HEADS = 8, 10, 32, 2
PATTERN = (1, 2)


class EncoderBlock(nn.Module):
    """Pre-norm self-attention and feed-forward, each with a residual connection."""

    def __init__(self, dim: int = DIM, heads: int = HEADS, p: float = 0.1):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(p)
        self.norm2 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, 2 * dim)
        self.ff2 = nn.Linear(2 * dim, dim)
        self.ff_drop = nn.Dropout(p)

    def split(self, t: torch.Tensor) -> torch.Tensor:
        """(batch, length, dim) → (batch, heads, length, dim / heads)."""
        return t.reshape(t.size(0), t.size(1), self.heads, -1).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        q, k, v = self.split(self.query(h)), self.split(self.key(h)), self.split(self.value(h))
        scores = q @ k.transpose(-2, -1) / math.sqrt(DIM // HEADS)
        weights = self.attn_drop(torch.softmax(scores, dim=-1))
        mixed = (weights @ v).transpose(1, 2).reshape(x.size(0), x.size(1), -1)
        x = x + self.proj(mixed)
        x = x + self.ff_drop(self.ff2(torch.relu(self.ff1(self.norm2(x)))))
        return x


class PatternClassifier(nn.Module):
    """Token and position embeddings, one encoder block, mean pooling, two logits."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.position = nn.Parameter(0.02 * torch.randn(LENGTH, DIM))
        self.block = EncoderBlock()
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.block(self.embed(tokens) + self.position)
        return self.head(self.norm(x).mean(dim=1))


def build_model() -> nn.Module:
    """The classifier with one two-head block of width 32."""
    return PatternClassifier()


def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on logits, mean over the batch."""
    return F.cross_entropy(output, target)


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of sequences classified right."""
    return (output.argmax(dim=1) == target).float().mean().item()


def make_data(seed: int, n: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """X (n, 10) token ids, y (n,): 1 where the pattern 1, 2 occurs; about half do."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, VOCAB, (n, LENGTH), generator=gen)
    first, second = PATTERN
    # Break every accidental occurrence (a 3 after a 1 cannot form a new one) ...
    hits = (tokens[:, :-1] == first) & (tokens[:, 1:] == second)
    tokens[:, 1:] = torch.where(hits, torch.full_like(tokens[:, 1:], 3), tokens[:, 1:])
    # ... then plant the pattern at a random place in half of the sequences.
    planted = torch.arange(n) < n // 2
    where = torch.randint(0, LENGTH - 1, (n,), generator=gen)
    rows = torch.arange(n)[planted]
    tokens[rows, where[planted]] = first
    tokens[rows, where[planted] + 1] = second
    y = ((tokens[:, :-1] == first) & (tokens[:, 1:] == second)).any(dim=1).long()
    order = torch.randperm(n, generator=gen)
    return tokens[order], y[order]
