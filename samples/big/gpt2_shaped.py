"""A GPT-2-small-shaped language model: 12 blocks, width 768, 12 heads, 128 tokens.

Random weights and random tokens (nothing is downloaded): it is here to show and measure
gradviz on a real-size graph (`gradviz trace samples/gpt2_shaped.py --graph` folds it to
the modules that fit). Built from Linear/LayerNorm/softmax pieces so that tracing shows
the inside of every block, with a causal mask and the output layer tied to the token
embedding, as GPT-2 has. GRADVIZ_GPT2="blocks,dim,heads,length" makes a smaller one.
"""

import math
import os

import torch
import torch.nn.functional as F
from torch import nn

BLOCKS, DIM, HEADS, LENGTH = (int(v) for v in os.environ.get("GRADVIZ_GPT2", "12,768,12,128").split(","))
VOCAB = 512  # GPT-2 has 50,257: the head's size does not change the graph's shape
TRAINING = {"lr": 3e-4, "epochs": 1, "batch_size": 2, "optimizer": "adam"}


class Attention(nn.Module):
    """Causal multi-head self-attention, written out."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)
        self.register_buffer("mask", torch.triu(torch.ones(LENGTH, LENGTH, dtype=torch.bool), diagonal=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).split(DIM, dim=2)
        q, k, v = (z.reshape(-1, LENGTH, HEADS, DIM // HEADS).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(DIM // HEADS)
        scores = scores.masked_fill(self.mask, float("-inf"))
        mixed = torch.softmax(scores, dim=-1) @ v
        return self.proj(mixed.transpose(1, 2).reshape(-1, LENGTH, DIM))


class MLP(nn.Module):
    """The block's feed-forward part: 4× wider, GELU."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(DIM, 4 * DIM)
        self.proj = nn.Linear(4 * DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-norm attention and MLP, each with a residual connection."""

    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(DIM)
        self.attn = Attention()
        self.ln2 = nn.LayerNorm(DIM)
        self.mlp = MLP()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Token and position embeddings, the blocks, a final LayerNorm, tied output layer."""

    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, DIM)
        self.wpe = nn.Embedding(LENGTH, DIM)
        self.blocks = nn.ModuleList(Block() for _ in range(BLOCKS))
        self.ln_f = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, VOCAB, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.wte(tokens) + self.wpe.weight
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def build_model() -> nn.Module:
    """GPT-2 small's shape with random weights."""
    torch.manual_seed(0)
    return GPT()


def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy over every position."""
    return F.cross_entropy(output.reshape(-1, VOCAB), target.reshape(-1))


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of next tokens predicted right (chance: 1/512 with random weights)."""
    return (output.argmax(dim=-1) == target).float().mean().item()


def make_data(seed: int, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token sequences; the target is the sequence shifted by one."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, VOCAB, (n, LENGTH + 1), generator=gen)
    return tokens[:, :-1], tokens[:, 1:]
