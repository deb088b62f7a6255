"""Color science: sRGB <-> CIE Lab (D65, 2 degree observer) and YUV (BT.601).

Every conversion exists twice with the same formulas: NumPy functions over
channel-last arrays ``(..., 3)`` and torch functions over channel-first batches
``(B, 3, H, W)`` (differentiable). sRGB values are float in [0, 1]; L is in
[0, 100], a and b roughly in [-110, 110]; Y in [0, 1], U and V in about
[-0.44, 0.44] and [-0.62, 0.62].

Out-of-gamut Lab never yields NaN: the XYZ values are clamped at zero before the
sRGB companding and the result is clipped to [0, 1].

torch is imported by the torch functions only: a photo colorized through onnxruntime never loads it (2 s).
"""
from __future__ import annotations

import numpy as np

# D65 reference white (the one scikit-image uses).
WHITE_D65 = (0.95047, 1.0, 1.08883)
RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423],
     [0.212671, 0.715160, 0.072169],
     [0.019334, 0.119193, 0.950227]], dtype=np.float64)
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)
RGB_TO_YUV = np.array(
    [[0.299, 0.587, 0.114],
     [-0.14714119, -0.28886916, 0.43601035],
     [0.61497538, -0.51496512, -0.10001026]], dtype=np.float64)
YUV_TO_RGB = np.linalg.inv(RGB_TO_YUV)

_EPS = 216.0 / 24389.0  # CIE epsilon: (6/29)^3
_KAPPA = 24389.0 / 27.0

AB_SCALE = 110.0  # |a|, |b| of sRGB colors stay below this; used to normalise ab


# ----------------------------------------------------------------- numpy ---
def _srgb_to_linear(c):
    return np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)


def _linear_to_srgb(c):
    c = np.maximum(c, 0.0)
    return np.where(c > 0.0031308, 1.055 * np.power(c, 1 / 2.4) - 0.055, 12.92 * c)


def _f(t):
    return np.where(t > _EPS, np.cbrt(t), (_KAPPA * t + 16.0) / 116.0)


def _f_inv(t):
    t = np.asarray(t)
    t3 = np.multiply(t, t, out=np.empty_like(t))  # not t ** 3: np.power is several times slower, and fullres
    t3 *= t                                       # calls this per pixel (in place: no temporaries)
    dark = t3 <= _EPS  # the linear segment (L below 8): few pixels, so computed for those alone
    if dark.any():
        t3[dark] = (116.0 * t[dark] - 16.0) / _KAPPA
    return t3


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB ``(..., 3)`` float in [0, 1] -> Lab ``(..., 3)`` float32."""
    rgb = np.asarray(rgb, dtype=np.float64)
    xyz = _srgb_to_linear(rgb) @ RGB_TO_XYZ.T / np.array(WHITE_D65)
    f = _f(xyz)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1).astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Lab ``(..., 3)`` -> sRGB ``(..., 3)`` float32 clipped to [0, 1]."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    xyz = np.stack([_f_inv(fx), _f_inv(fy), _f_inv(fz)], axis=-1) * np.array(WHITE_D65)
    rgb = _linear_to_srgb(xyz @ XYZ_TO_RGB.T)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def gray_rgb(L: np.ndarray) -> np.ndarray:
    """Luminance ``(H, W)`` in [0, 100] with zero ab -> uint8 sRGB ``(H, W, 3)``: the gray photo of that lightness."""
    lab = np.zeros(L.shape + (3,), np.float32)
    lab[..., 0] = L
    return (lab_to_rgb(lab) * 255 + 0.5).astype(np.uint8)


def rgb_to_luminance(rgb: np.ndarray) -> np.ndarray:
    """sRGB ``(..., 3)`` in [0, 1] -> CIE L ``(...)`` in [0, 100], float32."""
    rgb = np.asarray(rgb, dtype=np.float64)
    y = _srgb_to_linear(rgb) @ RGB_TO_XYZ[1]
    return (116.0 * _f(y) - 16.0).astype(np.float32)


def gray_to_luminance(gray: np.ndarray) -> np.ndarray:
    """Gray values in [0, 1] (an sRGB gray, R=G=B) -> CIE L in [0, 100], float32."""
    y = _srgb_to_linear(np.asarray(gray, dtype=np.float64))
    return (116.0 * _f(y) - 16.0).astype(np.float32)


def rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """sRGB ``(..., 3)`` in [0, 1] -> YUV (BT.601, analog) ``(..., 3)`` float32."""
    return (np.asarray(rgb, dtype=np.float64) @ RGB_TO_YUV.T).astype(np.float32)


def yuv_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """YUV (BT.601) ``(..., 3)`` -> sRGB ``(..., 3)`` float32 clipped to [0, 1]."""
    rgb = np.asarray(yuv, dtype=np.float64) @ YUV_TO_RGB.T
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------- torch ---
def _t(m: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    import torch
    return torch.as_tensor(m, dtype=like.dtype, device=like.device)


def _apply(m: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    """Multiply each pixel of ``x`` (B, 3, H, W) by the 3x3 matrix ``m``."""
    import torch
    return torch.einsum("ij,bjhw->bihw", _t(m, x), x)


def rgb_to_lab_t(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(B, 3, H, W)`` in [0, 1] -> Lab ``(B, 3, H, W)``; differentiable."""
    import torch
    lin = torch.where(rgb > 0.04045, ((rgb.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = _apply(RGB_TO_XYZ, lin) / _t(np.array(WHITE_D65), rgb).view(1, 3, 1, 1)
    f = torch.where(xyz > _EPS, xyz.clamp_min(_EPS) ** (1.0 / 3.0), (_KAPPA * xyz + 16.0) / 116.0)
    L = 116.0 * f[:, 1:2] - 16.0
    a = 500.0 * (f[:, 0:1] - f[:, 1:2])
    b = 200.0 * (f[:, 1:2] - f[:, 2:3])
    return torch.cat([L, a, b], dim=1)


def lab_to_rgb_t(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Lab ``(B, 3, H, W)`` -> sRGB ``(B, 3, H, W)``, clipped to [0, 1] unless ``clip=False``."""
    import torch
    fy = (lab[:, 0:1] + 16.0) / 116.0
    f = torch.cat([fy + lab[:, 1:2] / 500.0, fy, fy - lab[:, 2:3] / 200.0], dim=1)
    xyz = torch.where(f ** 3 > _EPS, f ** 3, (116.0 * f - 16.0) / _KAPPA)
    lin = _apply(XYZ_TO_RGB, xyz * _t(np.array(WHITE_D65), lab).view(1, 3, 1, 1))
    lin_pos = lin.clamp_min(0.0031308)
    rgb = torch.where(lin > 0.0031308, 1.055 * lin_pos ** (1 / 2.4) - 0.055, 12.92 * lin)
    return rgb.clamp(0.0, 1.0) if clip else rgb


def luminance_to_gray_t(L: torch.Tensor) -> torch.Tensor:
    """L ``(B, 1, H, W)`` in [0, 100] -> the sRGB gray level ``(B, 1, H, W)`` in [0, 1] with that lightness.

    Exact: the gray photo R = G = B = this value has Lab (L, 0, 0). Differentiable.
    """
    import torch
    fy = (L + 16.0) / 116.0
    y = torch.where(fy ** 3 > _EPS, fy ** 3, (116.0 * fy - 16.0) / _KAPPA).clamp(0.0, 1.0)
    return torch.where(y > 0.0031308, 1.055 * y.clamp_min(0.0031308) ** (1 / 2.4) - 0.055, 12.92 * y)


def rgb_to_yuv_t(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(B, 3, H, W)`` -> YUV (BT.601) ``(B, 3, H, W)``."""
    return _apply(RGB_TO_YUV, rgb)


def yuv_to_rgb_t(yuv: torch.Tensor) -> torch.Tensor:
    """YUV (BT.601) ``(B, 3, H, W)`` -> sRGB ``(B, 3, H, W)`` clipped to [0, 1]."""
    return _apply(YUV_TO_RGB, yuv).clamp(0.0, 1.0)


def clamp_ab_to_gamut(L: torch.Tensor, ab: torch.Tensor, iterations: int = 8) -> torch.Tensor:
    """Shrink chroma toward gray until each Lab pixel lies inside the sRGB gamut.

    ``L`` is ``(B, 1, H, W)`` in [0, 100], ``ab`` is ``(B, 2, H, W)``. Clipping
    RGB instead would change the luminance; scaling ab keeps L and hue. Only
    out-of-gamut pixels are searched (bisection on the chroma scale).
    """
    import torch
    def in_gamut(scale):
        rgb = lab_to_rgb_t(torch.cat([L, ab * scale], 1), clip=False)
        return ((rgb >= -1e-3) & (rgb <= 1 + 1e-3)).all(dim=1, keepdim=True)

    ok = in_gamut(torch.ones_like(L))
    if bool(ok.all()):
        return ab
    lo = torch.zeros_like(L)
    hi = torch.ones_like(L)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        good = in_gamut(mid)
        lo = torch.where(good, mid, lo)
        hi = torch.where(good, hi, mid)
    return torch.where(ok, ab, ab * lo)
