"""The colour scale of a map: value → position in [0, 1] (linear or log) → colour, and its legend."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# viridis at nine stops: dark blue (low) to yellow (high); readable on dark and light terminals.
PALETTE = ((68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
           (31, 158, 137), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37))
SHADES = " .:-=+*#%@"  # one character per level, for text without colour
PATH_COLOURS = ((255, 85, 85), (255, 255, 255), (255, 170, 0), (0, 220, 255), (255, 0, 255), (120, 255, 120))
PATH_MARKERS = "●■▲◆★✚"


@dataclass(frozen=True)
class ColourScale:
    """Maps values between vmin and vmax to [0, 1]; log spacing when the range spans decades."""

    vmin: float
    vmax: float
    log: bool

    @classmethod
    def fit(cls, values: np.ndarray) -> "ColourScale":
        """A scale over the finite values; log when max − min exceeds 100× the smallest gap above min."""
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return cls(0.0, 1.0, False)
        vmin, vmax = float(finite.min()), float(finite.max())
        above = finite - vmin
        positive = above[above > 0]
        # Bowls (quadratics, Rosenbrock) put almost all the range near the rim: a log scale
        # keeps the valley floor visible.
        log = positive.size > 0 and float(np.median(positive)) < 0.1 * (vmax - vmin)
        return cls(vmin, vmax if vmax > vmin else vmin + 1.0, log)

    def position(self, values: np.ndarray) -> np.ndarray:
        """Each value's place on the scale, 0 (low) … 1 (high); NaN stays NaN."""
        values = np.asarray(values, dtype=float)
        span = self.vmax - self.vmin
        with np.errstate(all="ignore"):
            if self.log:
                floor = span * 1e-4
                t = np.log((values - self.vmin) + floor) - np.log(floor)
                t = t / (np.log(span + floor) - np.log(floor))
            else:
                t = (values - self.vmin) / span
        return np.clip(t, 0.0, 1.0)

    def value_at(self, t: float) -> float:
        """The value at position t (inverse of position), for legend labels."""
        span = self.vmax - self.vmin
        if not self.log:
            return self.vmin + t * span
        floor = span * 1e-4
        return self.vmin + float(np.exp(np.log(floor) + t * (np.log(span + floor) - np.log(floor)))) - floor


def colour(t: float) -> tuple[int, int, int]:
    """The palette colour at t in [0, 1] (linear between stops); grey for NaN."""
    if not np.isfinite(t):
        return (90, 90, 90)
    x = t * (len(PALETTE) - 1)
    i = min(int(x), len(PALETTE) - 2)
    f = x - i
    a, b = PALETTE[i], PALETTE[i + 1]
    return tuple(int(round(a[c] + f * (b[c] - a[c]))) for c in range(3))  # type: ignore[return-value]


def shade(t: float) -> str:
    """The character for level t: ' ' lowest … '@' highest; '?' for NaN."""
    if not np.isfinite(t):
        return "?"
    return SHADES[min(int(t * len(SHADES)), len(SHADES) - 1)]


def hex_colour(rgb: tuple[int, int, int]) -> str:
    """#rrggbb."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)
