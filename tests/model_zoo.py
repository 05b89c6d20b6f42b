"""A zoo of small realistic models (tiny dimensions) for the correctness tests of model tracing.

Each entry builds (model, loss, x, y) from a seed: recurrent nets, a residual CNN with
BatchNorm and pooling, causal attention three ways, a weight-tied language model,
gather/where/index ops and in-place ops.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

T, D, V = 4, 8, 11  # sequence length, width, vocabulary: tiny so the suite stays fast


class GRUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, D, batch_first=True)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(D, 1)

    def forward(self, x):
        out, h = self.gru(x)
        return self.head(self.drop(out[:, -1]) + h[0])


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, D, num_layers=2, batch_first=True, dropout=0.25)
        self.head = nn.Linear(D, 1)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return self.head(out.mean(1) + c[-1])


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        h += x  # in place, as torchvision's BasicBlock does
        return self.relu(h)


class ResCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.block = ResBlock(4)
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = F.relu(self.bn(self.stem(x)), inplace=True)
        h = self.pool(self.block(h))
        return self.fc(self.gap(h).flatten(1))


class CausalByHand(nn.Module):
    """Single-head causal self-attention written out: masked_fill with -inf before softmax."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(3, 3 * D)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(D, 1)
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = q @ k.transpose(-2, -1) / D ** 0.5
        scores = scores.masked_fill(self.mask, float("-inf"))
        att = self.drop(torch.softmax(scores, dim=-1))
        return self.head((att @ v).mean(1))


class AdditiveMask(nn.Module):
    """Causal attention with an additive -inf mask and a finfo.min padding mask, logsumexp pooling."""

    def __init__(self):
        super().__init__()
        self.qk = nn.Linear(3, 2 * D)
        self.head = nn.Linear(T, 1)
        self.register_buffer("causal", torch.full((T, T), float("-inf")).triu(1))

    def forward(self, x):
        q, k = self.qk(x).chunk(2, dim=-1)
        scores = q @ k.transpose(-2, -1) + self.causal
        pad = torch.zeros(T, dtype=torch.bool)
        pad[-1] = True
        scores = scores.masked_fill(pad, torch.finfo(scores.dtype).min)
        return self.head(torch.logsumexp(scores, dim=-1))


class SDPANet(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(3, 3 * D)
        self.head = nn.Linear(D, 1)

    def forward(self, x):
        b = x.shape[0]
        q, k, v = self.qkv(x).view(b, T, 3, 2, D // 2).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=0.3 if self.training else 0.0)
        return self.head(a.transpose(1, 2).reshape(b, T, D).mean(1))


class MHANet(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(3, D)
        self.attn = nn.MultiheadAttention(D, 2, dropout=0.3, batch_first=True)
        self.head = nn.Linear(D, 1)
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

    def forward(self, x):
        h = self.inp(x)
        a, _ = self.attn(h, h, h, attn_mask=self.mask, need_weights=False)
        return self.head((a + h).mean(1))


class TiedLM(nn.Module):
    """A language model whose output layer shares the embedding's weight.

    head is registered first, so torch names the shared tensor `head.weight` although
    `emb` uses it first."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(D, V, bias=False)
        self.emb = nn.Embedding(V, D)
        self.mix = nn.Linear(D, D)
        self.drop = nn.Dropout(0.2)
        self.head.weight = self.emb.weight

    def forward(self, tokens):
        return self.head(self.drop(torch.tanh(self.mix(self.emb(tokens)))))


class IndexOps(nn.Module):
    """gather, where, index_select, advanced indexing and a scatter-add."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.register_buffer("pick", torch.tensor([0, 2, 5]))

    def forward(self, x):
        h = self.fc(x)
        idx = h.argmax(dim=1, keepdim=True)
        g = torch.gather(h, 1, idx)
        w = torch.where(h > 0, h, 0.1 * h)
        s = w.index_select(1, self.pick) + w[:, [1, 3, 4]]
        z = torch.zeros_like(h).scatter_add(1, idx.expand(-1, 2), h[:, :2])
        return torch.sigmoid(s.sum(1, keepdim=True) + g + z.sum(1, keepdim=True))


class InPlace(nn.Module):
    """In-place ops of every spelling: method_, `+=`, inplace=True, a masked_fill_."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(6, 6)
        self.fc3 = nn.Linear(6, 1)

    def forward(self, x):
        h = self.fc1(x)
        g = self.act(h)  # h is overwritten: fc1's node must still show its negative entries
        g = g * 1.0
        g.mul_(2)
        u = self.fc2(g)
        u += g
        u.masked_fill_(u < -0.5, 0.0)
        u.tanh_()
        return torch.sigmoid(self.fc3(u))


def _seq(seed: int, b: int = 3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, T, 3, generator=g), torch.randn(b, 1, generator=g)


def _mse(out, y):
    return F.mse_loss(out, y)


def _xent(out, y):
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def _zoo_batch(name: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    if name == "rescnn":
        return torch.randn(4, 1, 6, 6, generator=g), torch.randint(0, 3, (4,), generator=g)
    if name == "tied_lm":
        return torch.randint(0, V, (2, T), generator=g), torch.randint(0, V, (2, T), generator=g)
    if name in ("index_ops", "inplace"):
        x = torch.randn(5, 4, generator=g)
        return x, (x[:, :1] > 0).float()
    return _seq(seed)


ZOO: dict[str, tuple[Callable[[], nn.Module], Callable[[Any, Any], Any]]] = {
    "gru": (GRUNet, _mse),
    "lstm": (LSTMNet, _mse),
    "rescnn": (ResCNN, F.cross_entropy),
    "causal_by_hand": (CausalByHand, _mse),
    "additive_mask": (AdditiveMask, _mse),
    "sdpa": (SDPANet, _mse),
    "mha": (MHANet, _mse),
    "tied_lm": (TiedLM, _xent),
    "index_ops": (IndexOps, F.binary_cross_entropy),
    "inplace": (InPlace, F.binary_cross_entropy),
}


def make(name: str, seed: int = 0, training: bool = True):
    """(model, loss, x, y) for zoo entry `name`, the model built under torch.manual_seed(seed)."""
    build, loss = ZOO[name]
    torch.manual_seed(seed)
    model = build().train(training)
    x, y = _zoo_batch(name, seed)
    return model, loss, x, y
