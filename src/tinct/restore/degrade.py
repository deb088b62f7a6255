"""The degradation model: what time, handling and scanning do to a print, simulated on a clean photo.

Real pairs of damaged and clean prints do not exist, so restoration is learned, and measured, on
clean photos damaged by this model (the approach of Bringing Old Photos Back to Life). Every step
is a plain function ``(L, rng, ...) -> L`` on the luminance ``L`` ``(H, W)`` float32 in [0, 100];
the local damage (scratches, dust, cracks) also returns the damage mask ``(H, W)`` bool: the
pixels it visibly changed (by more than ``MASK_THRESHOLD`` L units), which is what a restorer must
find. ``degrade`` draws a realistic mix from a seeded generator; ``KINDS`` applies one kind alone.
Sepia/yellowing works on RGB (``sepia``), since it is a color change.

Sizes: parameters are in pixels of the photo as given (the network is trained on 64-128 px crops
of photos cached at 160 px, real scans are 300-3000 px; ``scale`` multiplies widths and radii).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

MASK_THRESHOLD = 4.0  # L units: a damaged pixel changed by more than this (invisible damage is not damage)


@dataclass
class Degraded:
    """``L``: ``(H, W)`` float32 in [0, 100], the damaged luminance; ``mask``: ``(H, W)`` bool, scratches/dust/cracks."""
    L: np.ndarray
    mask: np.ndarray


# ------------------------------------------------------------------ local damage (with a mask) ---

def _bezier(p0, p1, p2, n: int) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _paint(L: np.ndarray, coverage: np.ndarray, value: np.ndarray | float, opacity: float) -> tuple[np.ndarray, np.ndarray]:
    """Blend ``value`` into ``L`` where ``coverage`` (0..1) is drawn; the mask is where L visibly changed."""
    a = np.clip(coverage, 0, 1) * opacity
    out = L * (1 - a) + value * a
    return out.astype(np.float32), np.abs(out - L) > MASK_THRESHOLD


def scratches(L: np.ndarray, rng: np.random.Generator, count: int | None = None, width: tuple[float, float] = (0.6, 2.5),
              opacity: tuple[float, float] = (0.5, 1.0), bright: float = 0.75, scale: float = 1.0) -> Degraded:
    """Thin bright (emulsion scraped off: paper shows) or dark curves: long, gently bent, sometimes broken.

    ``count`` scratches (default 1-6); each a quadratic Bezier across 20-120 % of the photo's diagonal,
    ``width`` px (sub-pixel widths drawn faint), ``opacity``, bright with probability ``bright``.
    """
    H, W = L.shape
    count = int(rng.integers(1, 7)) if count is None else count
    out, mask = L.astype(np.float32), np.zeros(L.shape, bool)
    diag = float(np.hypot(H, W))
    for _ in range(count):
        cover = np.zeros((H * 4, W * 4), np.float32)  # drawn 4x larger, then averaged: anti-aliased, sub-pixel widths
        p0 = rng.uniform([0, 0], [W, H])
        # film scratches run along the film (near-vertical); print scratches go any way
        angle = rng.normal(np.pi / 2, 0.15) if rng.random() < 0.4 else rng.uniform(0, np.pi)
        length = rng.uniform(0.2, 1.2) * diag
        p2 = p0 + length * np.array([np.cos(angle), np.sin(angle)]) * rng.choice([-1, 1])
        p1 = (p0 + p2) / 2 + rng.normal(0, 0.08 * length, 2)
        pts = _bezier(p0, p1, p2, max(8, int(length / 2)))
        w = rng.uniform(*width) * scale
        thick = max(1, int(round(w * 4)))
        keep = np.ones(len(pts) - 1, bool)
        if rng.random() < 0.4:  # broken scratch: a few gaps
            for _ in range(int(rng.integers(1, 4))):
                s = int(rng.integers(0, len(keep)))
                keep[s:s + int(rng.integers(1, max(2, len(keep) // 5)))] = False
        seg = (pts * 4).astype(np.int32)
        for i in np.flatnonzero(keep):
            cv2.line(cover, tuple(seg[i]), tuple(seg[i + 1]), 1.0, thick, cv2.LINE_AA)
        cover = cv2.resize(cover, (W, H), interpolation=cv2.INTER_AREA)
        value = rng.uniform(88, 100) if rng.random() < bright else rng.uniform(0, 15)
        out, m = _paint(out, cover, value, rng.uniform(*opacity))
        mask |= m
    return Degraded(out, mask)


def dust(L: np.ndarray, rng: np.random.Generator, count: int | None = None, radius: tuple[float, float] = (0.4, 2.2),
         bright: float = 0.6, scale: float = 1.0) -> Degraded:
    """Dust, specks and lint on the print or the scanner glass: small blobs and a few short hairs."""
    H, W = L.shape
    count = int(rng.integers(3, 12) * max(1.0, H * W / 128 ** 2) ** 0.5) if count is None else count
    out, mask = L.astype(np.float32), np.zeros(L.shape, bool)
    for _ in range(count):
        cover = np.zeros((H * 4, W * 4), np.float32)
        c = rng.uniform([0, 0], [W * 4, H * 4]).astype(np.int32)
        if rng.random() < 0.15:  # a hair: a short wiggly curve
            p0 = c / 4
            p2 = p0 + rng.normal(0, 6 * scale, 2)
            pts = (_bezier(p0, p0 + rng.normal(0, 4 * scale, 2), p2, 12) * 4).astype(np.int32)
            cv2.polylines(cover, [pts], False, 1.0, max(1, int(rng.uniform(1.5, 3.5) * scale)), cv2.LINE_AA)
        else:
            r = rng.uniform(*radius) * scale * 4
            axes = (max(1, int(r)), max(1, int(r * rng.uniform(0.5, 1.0))))
            cv2.ellipse(cover, tuple(c), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA)
        cover = cv2.resize(cover, (W, H), interpolation=cv2.INTER_AREA)
        value = rng.uniform(85, 100) if rng.random() < bright else rng.uniform(0, 20)
        out, m = _paint(out, cover, value, rng.uniform(0.6, 1.0))
        mask |= m
    return Degraded(out, mask)


def cracks(L: np.ndarray, rng: np.random.Generator, count: int | None = None, scale: float = 1.0) -> Degraded:
    """Cracked emulsion (craquelure): jagged branching lines, mostly bright (the paper shows through)."""
    H, W = L.shape
    count = int(rng.integers(1, 4)) if count is None else count
    out, mask = L.astype(np.float32), np.zeros(L.shape, bool)
    for _ in range(count):
        cover = np.zeros((H * 4, W * 4), np.float32)
        stack = [(rng.uniform([0, 0], [W, H]), rng.uniform(0, 2 * np.pi), int(rng.integers(2, 5)))]
        while stack:
            p, angle, depth = stack.pop()
            pts = [p]
            for _ in range(int(rng.integers(6, 20))):
                angle += rng.normal(0, 0.5)  # jagged: the direction wanders at every step
                pts.append(pts[-1] + rng.uniform(1.5, 4) * scale * np.array([np.cos(angle), np.sin(angle)]))
                if depth > 0 and rng.random() < 0.12:
                    stack.append((pts[-1], angle + rng.choice([-1, 1]) * rng.uniform(0.5, 1.3), depth - 1))
            cv2.polylines(cover, [(np.array(pts) * 4).astype(np.int32)], False, 1.0,
                          max(1, int(rng.uniform(0.7, 1.8) * scale * 4)), cv2.LINE_AA)
        cover = cv2.resize(cover, (W, H), interpolation=cv2.INTER_AREA)
        value = rng.uniform(80, 100) if rng.random() < 0.8 else rng.uniform(0, 15)
        out, m = _paint(out, cover, value, rng.uniform(0.6, 1.0))
        mask |= m
    return Degraded(out, mask)


def craquelure(L: np.ndarray, rng: np.random.Generator, cell: float | None = None, keep: float | None = None,
               scale: float = 1.0) -> Degraded:
    """A print cracked all over (dried out, folded, rolled), as on the worst real scans
    (``historical/old-photos/scratch_d``): emulsion splits into cells, so the cracks are the edges of a Voronoi
    diagram of random points, ``cell`` px apart (default 12-35 % of the short side), each edge kept with probability
    ``keep`` (default 0.35-0.9) and bent at its midpoints; a fold or two may run straight across; flakes of
    emulsion are lost where cracks meet. Bright (paper shows) 80 % of the time."""
    from scipy.spatial import Voronoi
    H, W = L.shape
    cell = rng.uniform(0.12, 0.35) * min(H, W) if cell is None else cell
    keep = rng.uniform(0.35, 0.9) if keep is None else keep
    n = max(4, int(H * W / cell ** 2))
    seeds = rng.uniform([-0.1 * W, -0.1 * H], [1.1 * W, 1.1 * H], (n, 2))
    diagram = Voronoi(seeds)
    cover = np.zeros((H * 4, W * 4), np.float32)
    corners = []
    for a, b in diagram.ridge_vertices:
        if a < 0 or b < 0 or rng.random() > keep:
            continue
        p, q = diagram.vertices[a], diagram.vertices[b]
        t = np.linspace(0, 1, 4)[:, None]
        pts = p + t * (q - p)
        normal = np.array([p[1] - q[1], q[0] - p[0]]) / max(float(np.hypot(*(q - p))), 1e-6)
        pts[1:-1] += normal * rng.normal(0, 0.08 * cell, (2, 1))  # cracks are jagged, not ruled
        cv2.polylines(cover, [(pts * 4).astype(np.int32)], False, 1.0,
                      max(1, int(rng.uniform(0.6, 1.6) * scale * 4)), cv2.LINE_AA)
        corners.append(p)
    for _ in range(int(rng.integers(0, 3)) if rng.random() < 0.4 else 0):  # a fold: straight across the print
        p0, angle = rng.uniform([0, 0], [W, H]), rng.uniform(0, np.pi)
        d = 2 * max(H, W) * np.array([np.cos(angle), np.sin(angle)])
        cv2.line(cover, tuple((4 * (p0 - d)).astype(np.int32)), tuple((4 * (p0 + d)).astype(np.int32)), 1.0,
                 max(1, int(rng.uniform(0.8, 2.0) * scale * 4)), cv2.LINE_AA)
    for i in rng.permutation(len(corners))[:int(rng.integers(0, 6))]:  # flakes where cracks meet
        r = rng.uniform(1.5, 4) * scale
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(5, 9))))
        radii = r * rng.uniform(0.5, 1.3, len(angles))  # an irregular flake, not a disc
        pts = corners[i] + np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)
        cv2.fillPoly(cover, [(pts * 4).astype(np.int32)], 1.0, cv2.LINE_AA)
    cover = cv2.resize(cover, (W, H), interpolation=cv2.INTER_AREA)
    value = rng.uniform(80, 100) if rng.random() < 0.8 else rng.uniform(0, 15)
    out, mask = _paint(L.astype(np.float32), cover, value, rng.uniform(0.6, 1.0))
    return Degraded(out, mask)


# ----------------------------------------------------------------- global damage (no mask) ---

def grain(L: np.ndarray, rng: np.random.Generator, sigma: float | None = None, clump: float | None = None) -> np.ndarray:
    """Film grain (noise clumped over ``clump`` px, strongest in the mid-tones) or sensor noise (``clump`` 0).

    ``sigma``: standard deviation in L units (default 1.5-7).
    """
    sigma = rng.uniform(1.5, 7) if sigma is None else sigma
    clump = (rng.uniform(0.4, 1.0) if rng.random() < 0.7 else 0.0) if clump is None else clump
    n = rng.standard_normal(L.shape).astype(np.float32)
    if clump > 0:
        n = cv2.GaussianBlur(n, (0, 0), clump)
        n /= max(float(n.std()), 1e-6)
    midtones = 0.5 + 2 * (L / 100) * (1 - L / 100)  # 0.5 at black and white, 1 at mid-gray
    return np.clip(L + sigma * midtones * n, 0, 100).astype(np.float32)


def blur(L: np.ndarray, rng: np.random.Generator, sigma: float | None = None) -> np.ndarray:
    """Soft focus or a soft scan: Gaussian blur, ``sigma`` px (default 0.4-1.5)."""
    sigma = rng.uniform(0.4, 1.5) if sigma is None else sigma
    return cv2.GaussianBlur(L.astype(np.float32), (0, 0), sigma)


def jpeg(L: np.ndarray, rng: np.random.Generator, quality: int | None = None) -> np.ndarray:
    """JPEG compression of the 8-bit gray image at ``quality`` (default 15-60): blocks and ringing."""
    quality = int(rng.integers(15, 61)) if quality is None else quality
    u8 = np.clip(L * 2.55 + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 2.55


def fade(L: np.ndarray, rng: np.random.Generator, contrast: float | None = None, black: float | None = None,
         white: float | None = None, gamma: float | None = None) -> np.ndarray:
    """A faded print: contrast lost (x ``contrast``), blacks lifted to ``black``, highlights clipped at ``white``."""
    contrast = rng.uniform(0.45, 0.85) if contrast is None else contrast
    black = rng.uniform(5, 30) if black is None else black
    white = rng.uniform(85, 100) if white is None else white
    gamma = float(np.exp(rng.uniform(-0.25, 0.25))) if gamma is None else gamma
    out = black + contrast * (100 - black) * (np.clip(L, 0, 100) / 100) ** gamma
    return np.minimum(out, white).astype(np.float32)


def vignette(L: np.ndarray, rng: np.random.Generator, strength: float | None = None,
             tilt: float | None = None) -> np.ndarray:
    """Uneven exposure: darker corners (``strength`` 0-0.45) and a brightness slope across (``tilt`` +-0.2)."""
    H, W = L.shape
    strength = rng.uniform(0.1, 0.45) if strength is None else strength
    tilt = rng.uniform(-0.2, 0.2) if tilt is None else tilt
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    cy, cx = H / 2 + rng.normal(0, H / 8), W / 2 + rng.normal(0, W / 8)
    r2 = ((y - cy) / (H / 2)) ** 2 + ((x - cx) / (W / 2)) ** 2
    theta = rng.uniform(0, 2 * np.pi)
    ramp = ((x / W - 0.5) * np.cos(theta) + (y / H - 0.5) * np.sin(theta))
    gain = (1 - strength * np.clip(r2 / 2, 0, 1)) * (1 + tilt * ramp)
    return np.clip(L * gain, 0, 100).astype(np.float32)


def stains(L: np.ndarray, rng: np.random.Generator, count: int | None = None, shift: float | None = None) -> np.ndarray:
    """Water stains, foxing and mottled, silvered emulsion: ``count`` broad blobs (default 1-3) whose tone is
    shifted by ``shift`` L units (default 4-16; darker 70 % of the time), ringed by a darker tide line where the
    water dried, with a mottle inside. Broad and soft, so no mask: a restorer evens them out, never inpaints them."""
    H, W = L.shape
    count = int(rng.integers(1, 4)) if count is None else count
    out = L.astype(np.float32)
    for _ in range(count):
        size = rng.uniform(0.08, 0.2) * min(H, W)
        field = cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), size)
        field /= max(float(field.std()), 1e-6)
        inside = (field > rng.uniform(0.3, 1.2)).astype(np.float32)
        soft = cv2.GaussianBlur(inside, (0, 0), rng.uniform(0.8, 3.0))
        ring = 4 * soft * (1 - soft)  # 1 on the stain's edge, 0 away from it
        delta = (rng.uniform(4, 16) if shift is None else shift) * (-1 if rng.random() < 0.7 else 1)
        mottle = cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), rng.uniform(1, 4))
        mottle /= max(float(mottle.std()), 1e-6)
        out = out + soft * (delta + 0.25 * abs(delta) * mottle) - ring * rng.uniform(3, 12)
    return np.clip(out, 0, 100).astype(np.float32)


def halftone(L: np.ndarray, rng: np.random.Generator, period: float | None = None, amount: float | None = None) -> np.ndarray:
    """A printed (newspaper/magazine) photo: a rotated dot screen of ``period`` px, softened by the scan."""
    H, W = L.shape
    period = rng.uniform(2.5, 6) if period is None else period
    amount = rng.uniform(0.3, 0.8) if amount is None else amount
    angle = np.deg2rad(rng.choice([15, 45, 75]) + rng.normal(0, 2))
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    u, v = x * np.cos(angle) + y * np.sin(angle), -x * np.sin(angle) + y * np.cos(angle)
    screen = 0.5 + 0.25 * (np.cos(2 * np.pi * u / period) + np.cos(2 * np.pi * v / period))  # 0..1
    dots = np.where(L / 100 > screen, 100.0, 0.0).astype(np.float32)
    dots = cv2.GaussianBlur(dots, (0, 0), period / 3)
    return ((1 - amount) * L + amount * dots).astype(np.float32)


def sepia(rgb: np.ndarray, rng: np.random.Generator, strength: float | None = None,
          yellow: float | None = None) -> np.ndarray:
    """Sepia toning and yellowed paper: ``rgb`` ``(H, W, 3)`` float32 in [0, 1] -> the same, tinted.

    ``strength`` 0-1 mixes toward the classic sepia matrix (a monochrome brown print of the photo);
    ``yellow`` 0-0.3 is the paper's yellowing (blue lost, most in the highlights).
    """
    strength = rng.uniform(0.5, 1.0) if strength is None else strength
    yellow = rng.uniform(0.0, 0.3) if yellow is None else yellow
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
    toned = np.clip(rgb @ m.T, 0, 1)
    out = (1 - strength) * rgb + strength * toned
    gray = out.mean(axis=-1, keepdims=True)
    out = out * (1 - yellow * gray * np.array([0.0, 0.25, 1.0], np.float32))
    return np.clip(out, 0, 1).astype(np.float32)


def fade_color(rgb: np.ndarray, rng: np.random.Generator, saturation: float | None = None,
               cast: np.ndarray | None = None) -> np.ndarray:
    """A faded color print: dyes lost unevenly (a color cast, most often magenta/red as cyan fades) and
    saturation lost; ``rgb`` ``(H, W, 3)`` float32 in [0, 1] -> the same."""
    saturation = rng.uniform(0.3, 0.7) if saturation is None else saturation
    if cast is None:
        cast = np.array([1.0, rng.uniform(0.75, 0.95), rng.uniform(0.55, 0.9)], np.float32)
        cast = cast[rng.permutation(3)] if rng.random() < 0.3 else cast
    gray = rgb.mean(axis=-1, keepdims=True)
    out = gray + saturation * (rgb - gray)
    out = 0.12 + 0.8 * out * cast  # and the contrast fades, lifted blacks
    return np.clip(out, 0, 1).astype(np.float32)


# ------------------------------------------------------------------------------- the mix ---

@dataclass
class DegradeConfig:
    """Probability of each kind in the realistic mix (each drawn independently, then applied in print order)."""
    fade: float = 0.7
    vignette: float = 0.4
    scratches: float = 0.7
    dust: float = 0.6
    cracks: float = 0.25
    halftone: float = 0.05
    blur: float = 0.4
    grain: float = 0.8
    jpeg: float = 0.4
    # the worst real prints' damage, added in session 15; off in this mix, which the restoration network is
    # trained and benchmarked on (bench/restore.py), on in AGED_PRINTS, the colorizer's (tinct train --damage)
    stains: float = 0.0
    craquelure: float = 0.0
    scale: float = 1.0  # widths and radii of the local damage


MIX_KINDS = ("scratches", "dust", "cracks", "grain", "blur", "jpeg", "fade", "vignette", "halftone")
KINDS = MIX_KINDS + ("stains", "craquelure")
LOCAL = ("scratches", "dust", "cracks", "craquelure")  # these make the damage mask
AGED_PRINTS = DegradeConfig(stains=0.35, craquelure=0.2)  # the realistic mix and the two broad kinds
MIXES = {"realistic": DegradeConfig(), "aged": AGED_PRINTS}  # by name: tinct train --damage-mix, bench/damaged.py


def apply_kind(kind: str, L: np.ndarray, rng: np.random.Generator, scale: float = 1.0) -> Degraded:
    """One degradation ``kind`` (of ``KINDS``) with random parameters: ``L`` -> ``Degraded``."""
    L = np.asarray(L, np.float32)
    if kind in LOCAL:
        return {"scratches": scratches, "dust": dust, "cracks": cracks, "craquelure": craquelure}[kind](
            L, rng, scale=scale)
    fn = {"grain": grain, "blur": blur, "jpeg": jpeg, "fade": fade, "vignette": vignette, "halftone": halftone,
          "stains": stains}.get(kind)
    if fn is None:
        raise ValueError(f"unknown degradation {kind!r}; known: {', '.join(KINDS)}")
    return Degraded(fn(L, rng), np.zeros(L.shape, bool))


def degrade(L: np.ndarray, rng: np.random.Generator, config: DegradeConfig | None = None) -> Degraded:
    """The realistic mix: the print ages (fading, uneven exposure), is handled (scratches, dust, cracks),
    and is scanned (halftone of a printed copy, blur, grain/noise, JPEG). ``L`` ``(H, W)`` in [0, 100]."""
    config = config or DegradeConfig()
    L = np.asarray(L, np.float32)
    mask = np.zeros(L.shape, bool)
    on = {k: rng.random() < getattr(config, k) for k in MIX_KINDS}
    # the later kinds draw only when asked for, so a seed damages the first nine's mix exactly as before
    on.update({k: getattr(config, k) > 0 and rng.random() < getattr(config, k) for k in KINDS if k not in on})
    if not any(on[k] for k in LOCAL) and rng.random() < 0.5:
        on["scratches"] = True  # most old prints the tool sees are damaged somewhere
    for kind in ("fade", "vignette", "stains", "scratches", "dust", "cracks", "craquelure", "halftone", "blur",
                 "grain", "jpeg"):
        if on[kind]:
            d = apply_kind(kind, L, rng, config.scale)
            L = d.L
            if kind in LOCAL:
                mask |= d.mask
    return Degraded(np.clip(L, 0, 100).astype(np.float32), mask)


def training_sample(L: np.ndarray, rng: np.random.Generator, config: DegradeConfig | None = None,
                    clean: float = 0.0, single: float = 0.0, kinds: tuple[str, ...] = MIX_KINDS) -> Degraded:
    """What the restoration network learns from: with probability ``clean`` the photo untouched, with ``single``
    one kind of damage alone (drawn uniformly from ``kinds``: the mix's nine, as the shipped network learned, or
    all of ``KINDS``), else the realistic mix (``degrade``).

    Without clean and mildly damaged examples a restorer only ever sees heavy, mostly faded inputs and learns to
    change every photo (the 300-step network lowered an undamaged photo to 29.6 dB): it must also learn to leave
    alone what is not damaged.
    """
    L = np.asarray(L, np.float32)
    r = rng.random()
    if r < clean:
        return Degraded(L.copy(), np.zeros(L.shape, bool))
    if r < clean + single:
        d = apply_kind(str(rng.choice(kinds)), L, rng, (config or DegradeConfig()).scale)
        return Degraded(np.clip(d.L, 0, 100).astype(np.float32), d.mask)
    return degrade(L, rng, config)


def config_from(**kw) -> DegradeConfig:
    """A ``DegradeConfig`` with only the named kinds on (probability 1), the rest off."""
    off = {f.name: 0.0 for f in dataclasses.fields(DegradeConfig) if f.name != "scale"}
    return DegradeConfig(**{**off, **kw})
