"""Guided films: hints on frames carried along the motion, whole-film hints, a reference per film or per shot,
resuming with carried hints, and the temporal scores (CDC, warp error)."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from tinct.color import gray_rgb, rgb_to_lab
from tinct.errors import TinctError
from tinct.models import create_model
from tinct.video import colorize as vcolorize
from tinct.video import tracks
from tinct.video.colorize import colorize_video, work_dir
from tinct.video.consistency import CDC, TruthMotion
from tinct.video.evaluate import ClipScorer
from tinct.video.guide import load_film_hints, parse_time
from tinct.video.locality import hint_gate
from tinct.video.options import TemporalOptions, VideoOptions
from tinct.video.tracks import KeyPoint, plan_guidance
from tinct.weights import load_model

from .test_video import make_clip, probe, run_cli

SW, SH, SIDE, STEP = 128, 96, 24, 4        # the square clip: frame size, square side, px moved per frame
RED = "#c02020"


def square_L(i: int, shot2_from: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Frame ``i``: a bright square moving right by STEP px over a static textured background (CIE L)."""
    y, x = np.mgrid[0:SH, 0:SW].astype(np.float32)
    L = 55 + 12 * np.sin(x / 3.1) * np.cos(y / 4.3) + 8 * np.sin((x + 2 * y) / 7)
    if shot2_from is not None and i >= shot2_from:
        return (20 + 5 * np.cos(x / 5) + 0 * y).astype(np.float32), (0, 0)   # another, dark shot
    x0, y0 = 20 + STEP * i, 36
    yy, xx = y[y0:y0 + SIDE, x0:x0 + SIDE] - y0, x[y0:y0 + SIDE, x0:x0 + SIDE] - x0
    L[y0:y0 + SIDE, x0:x0 + SIDE] = 75 + 2 * np.sin(xx / 2.3) * np.cos(yy / 3.1)  # texture moving with it
    return L.astype(np.float32), (x0, y0)


def square_clip(path: Path, frames: int = 10, shot2_from: int | None = None) -> Path:
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt, s.options = SW, SH, "yuv420p", {"crf": "12"}
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(gray_rgb(square_L(i, shot2_from)[0]), format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    return path


def red_mask(rgb: np.ndarray, hue_of: str = RED) -> np.ndarray:
    """Pixels clearly of the hint's hue: chroma > 20 and hue within 30 degrees."""
    lab = rgb_to_lab(rgb.astype(np.float32) / 255)
    ref = rgb_to_lab(np.array([int(hue_of[i:i + 2], 16) for i in (1, 3, 5)], np.float32) / 255)
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))
    ref_hue = np.degrees(np.arctan2(ref[2], ref[1]))
    return (np.hypot(lab[..., 1], lab[..., 2]) > 20) & (np.abs((hue - ref_hue + 180) % 360 - 180) < 30)


def color_photo(path: Path, rgb) -> Path:
    """A small photo of one color, with a little texture (a flat image reads as gray to the reference check)."""
    noise = np.random.default_rng(0).integers(-25, 26, (24, 24, 3))
    Image.fromarray((np.array(rgb) + noise).clip(0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def default_model():
    return load_model("default")


# ---------------------------------------------------------------- acceptance ---
def test_red_hint_on_frame_0_keeps_the_moving_square_red_and_nothing_else(tmp_path, default_model, capsys):
    clip = square_clip(tmp_path / "square.mp4", frames=10)
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps([{"frame": 0, "x": 32, "y": 48, "color": RED, "radius": 6}]))
    out = tmp_path / "color.mp4"
    # through the command line: hints given for a film no longer fail with "for photos, not films"
    code, err = run_cli(["colorize", str(clip), "-o", str(out), "--hints", str(hints), "--crf", "12"], capsys)
    assert code == 0, err
    frames = probe(out)["frames"]
    assert len(frames) == 10
    for k in (0, 9):
        _, (x0, y0) = square_L(k)
        inner = np.zeros((SH, SW), bool)
        inner[y0 + 3:y0 + SIDE - 3, x0 + 3:x0 + SIDE - 3] = True
        near = np.zeros((SH, SW), bool)
        near[max(0, y0 - 3):y0 + SIDE + 3, max(0, x0 - 3):x0 + SIDE + 3] = True
        red = red_mask(frames[k])
        assert red[inner].mean() > 0.9, (k, red[inner].mean())      # the square is red, from frame 0 to the last
        assert red[~near].mean() < 0.005, (k, red[~near].sum())    # and nothing else is
    # without the hint the model does not make it red by itself
    plain = probe(colorize_video(default_model, clip, tmp_path / "plain.mp4", VideoOptions(progress=False)).dest)
    _, (x0, y0) = square_L(9)
    assert red_mask(plain["frames"][9])[y0 + 3:y0 + SIDE - 3, x0 + 3:x0 + SIDE - 3].mean() < 0.2


# ------------------------------------------------------------ look-ahead pass ---
def _L8(i, shot2_from=None):
    return np.clip(square_L(i, shot2_from)[0] * 2.55 + 0.5, 0, 255).astype(np.uint8)


def test_points_follow_the_motion_forward_and_back_and_stop_at_a_cut():
    frames = [_L8(i, shot2_from=8) for i in range(12)]
    key = KeyPoint(index=0, frame=4, x=20 + STEP * 4 + 12.5, y=48.5, radius=5, a=60, b=40)
    plan = plan_guidance(iter(frames), [key], TemporalOptions(), whole_film=True)
    assert plan.cuts == [8] and plan.complete and plan.shots == 2
    for t in range(8):   # back to the start of the shot, forward to its end
        (row,) = plan.points[t]
        assert abs(row[1] - (20 + STEP * t + 12.5)) < 3 and abs(row[2] - 48.5) < 1.5, (t, row)  # of a 24 px square
    assert all(t not in plan.points for t in range(8, 12))      # the next shot carries nothing
    assert plan.shot(7) == 0 and plan.shot(8) == 1 and plan.is_cut(8) and not plan.is_cut(7)


def test_a_point_leaving_the_frame_stops_and_the_pass_ends_early():
    frames = [_L8(i) for i in range(30)]        # the square leaves on the right near frame 27
    key = KeyPoint(index=0, frame=0, x=32.5, y=48.5, radius=5, a=60, b=40)
    plan = plan_guidance(iter(frames), [key], TemporalOptions())
    last = max(plan.points)
    assert 20 <= last < 29 and plan.points[last][0][1] < SW
    assert plan.frames == last + 2 and not plan.complete    # stopped reading once no point was left


def test_plan_round_trips(tmp_path):
    plan = tracks.GuidePlan(frames=5, cuts=[3], points={0: [(1, 2.5, 3.5, 1.0, 20.0, -5.0)]}, complete=True)
    plan.save(tmp_path / "p.npz")
    back = tracks.GuidePlan.load(tmp_path / "p.npz")
    assert (back.frames, back.cuts, back.points, back.complete) == (5, [3], plan.points, True)


def test_gate_stops_at_an_edge():
    L, _ = square_L(0)
    mask = np.zeros(L.shape, bool)
    mask[48, 32] = True
    g = hint_gate(L, mask, 8.0)
    assert g[40:55, 25:40].min() > 0.8        # inside the square
    assert g[:, 60:].max() < 0.05            # the background beyond its edge


# ----------------------------------------------------------------- hints file ---
def test_film_hints_file(tmp_path):
    p = tmp_path / "h.json"
    p.write_text(json.dumps([{"frame": 3, "x": 1, "y": 2, "color": "#ff0000"},
                             {"time": "00:00:01.5", "x": 5, "y": 6, "color": "#00ff00", "radius": 2},
                             {"x": 7, "y": 8, "color": "#0000ff"}]))
    fh = load_film_hints(p, 20, 10, Fraction(12))
    assert [k["frame"] for k in fh.keyed] == [3, 18] and fh.static.count == 1 and fh.static.mask[8, 7]
    assert parse_time("1:02.5", Fraction(10), "t") == 625 and parse_time(2, Fraction(25), "t") == 50


@pytest.mark.parametrize("points, message", [
    ([{"frame": 1, "time": "0:01", "x": 1, "y": 1, "color": "#ff0000"}], "not both"),
    ([{"frame": -2, "x": 1, "y": 1, "color": "#ff0000"}], "frame must be"),
    ([{"time": "soon", "x": 1, "y": 1, "color": "#ff0000"}], "time must look like"),
    ([{"frame": 1, "x": 99, "y": 1, "color": "#ff0000"}], "point 1: (99, 1) is outside"),
    ([{"frame": 1, "x": 1, "y": 1, "color": "#ff0000"}, {"frame": 1, "x": 1, "y": 1, "colour": "red"}],
     "point 2: missing 'color'"),
    ([], "non-empty list"),
])
def test_bad_film_hints_are_one_line_errors(tmp_path, points, message):
    p = tmp_path / "h.json"
    p.write_text(json.dumps(points))
    with pytest.raises(TinctError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_film_hints(p, 20, 10, Fraction(12))


def test_hint_past_the_end_and_per_shot_count_fail_before_writing(tmp_path, default_model, capsys):
    clip = square_clip(tmp_path / "two.mp4", frames=6, shot2_from=3)
    (tmp_path / "h.json").write_text(json.dumps([{"frame": 40, "x": 1, "y": 1, "color": RED}]))
    refs = tmp_path / "refs"
    refs.mkdir()
    color_photo(refs / "a.png", (200, 30, 30))
    for args, message in ((["--hints", str(tmp_path / "h.json")], "frame 40 is past the film's end (6 frames)"),
                          (["--reference-per-shot", str(refs)], "1 photos but the film has 2 shots (new shots at "
                                                                "frames 3)"),
                          (["--method", "levin"], "not films"),
                          (["--reference", str(tmp_path / "nope.jpg")], "no such reference photo"),
                          (["--palette", "#ff0000", "--reference", str(refs / "a.png")], "one of")):
        out = tmp_path / "o.mp4"
        code, err = run_cli(["colorize", str(clip), "-o", str(out), *args], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, (args, err)
        assert not out.exists() and not work_dir(out).exists()


# ------------------------------------------------------------------ references ---
def test_reference_per_shot_gives_each_shot_its_colors(tmp_path, default_model):
    clip = square_clip(tmp_path / "two.mp4", frames=6, shot2_from=3)
    refs = tmp_path / "refs"
    refs.mkdir()
    color_photo(refs / "1_blue.png", (40, 90, 200))
    color_photo(refs / "2_orange.png", (200, 120, 40))
    out = colorize_video(default_model, clip, tmp_path / "o.mp4", VideoOptions(reference_per_shot=str(refs),
                                                                                 progress=False))
    assert out.cuts == [3]
    b = [rgb_to_lab(f.astype(np.float32) / 255)[..., 2].mean() for f in probe(out.dest)["frames"]]
    assert max(b[:3]) < min(b[3:]) - 5      # blue (b < 0) in the first shot, orange (b > 0) in the second
    # one photo for the whole film
    one = colorize_video(default_model, clip, tmp_path / "p.mp4", VideoOptions(reference=str(refs / "1_blue.png"),
                                                                                 progress=False))
    b1 = [rgb_to_lab(f.astype(np.float32) / 255)[..., 2].mean() for f in probe(one.dest)["frames"]]
    assert max(b1) < min(b[3:]) - 5


# ---------------------------------------------------------------------- resume ---
def test_carried_hints_resume_exactly(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = create_model("unet", base_channels=8, depth=2, hint_channels=3).eval()
    clip = square_clip(tmp_path / "sq.mp4", frames=9)
    (tmp_path / "h.json").write_text(json.dumps([{"frame": 4, "x": 48, "y": 48, "color": RED, "radius": 6}]))
    opts = VideoOptions(segment_frames=3, batch=2, progress=False, hints=str(tmp_path / "h.json"))
    whole = probe(colorize_video(model, clip, tmp_path / "whole.mp4", opts).dest)["frames"]

    finish, calls = vcolorize._finish_segment, []

    def finish_then_die(work, seg, *args):
        finish(work, seg, *args)
        calls.append(seg)
        if len(calls) == 2:
            raise KeyboardInterrupt

    out = tmp_path / "color.mp4"
    monkeypatch.setattr(vcolorize, "_finish_segment", finish_then_die)
    with pytest.raises(KeyboardInterrupt):
        colorize_video(model, clip, out, opts)
    monkeypatch.setattr(vcolorize, "_finish_segment", finish)
    assert (work_dir(out) / "guide_plan.npz").exists()

    def no_second_pass(*a, **k):
        raise AssertionError("the saved look-ahead pass should have been reused")

    monkeypatch.setattr(vcolorize.FilmGuide, "make_plan", no_second_pass)
    result = colorize_video(model, clip, out, opts)
    assert result.resumed_from == 6
    resumed = probe(out)["frames"]
    assert len(resumed) == 9 and max(np.abs(a.astype(int) - b).mean() for a, b in zip(whole, resumed)) < 1.0
    # an edited hints file is another job: the parts are discarded, not mixed
    monkeypatch.undo()
    (tmp_path / "h.json").write_text(json.dumps([{"frame": 1, "x": 48, "y": 48, "color": "#2040c0"}]))
    assert colorize_video(model, clip, tmp_path / "again.mp4", opts).resumed_from == 0


# -------------------------------------------------------------- temporal scores ---
def test_cdc_and_warp_error_rank_a_flickering_film_above_a_steady_one():
    y, x = np.mgrid[0:48, 0:64].astype(np.float32)

    def frame(i, tint):
        rgb = np.stack([90 + 60 * np.sin((x + 2 * i) / 6), 70 + 50 * np.cos(y / 5), 60 + 0 * x], -1) + tint
        return rgb.clip(0, 255).astype(np.uint8)

    truth = [frame(i, 0) for i in range(8)]
    flicker = [frame(i, 25 * (i % 2) * np.array([1, -1, 0])) for i in range(8)]
    motion = TruthMotion()
    same, jumpy = ClipScorer(motion), ClipScorer(motion)
    for i, t in enumerate(truth):
        L = rgb_to_lab(t.astype(np.float32) / 255)[..., 0]
        same.add(t, t, L)
        jumpy.add(flicker[i], t, L)
    s, j = same.summary(), jumpy.summary()
    assert s["cdc"] == pytest.approx(s["cdc_true"]) and s["warp_error"] == pytest.approx(s["warp_error_true"])
    assert j["cdc"] > 3 * s["cdc"] and j["warp_error"] > s["warp_error"] + 5
    c = CDC()
    for _ in range(5):
        c.add(truth[0])
    assert c.value() == 0.0


def test_evaluate_video_reports_cdc_and_warp_error(tmp_path, tiny_model_path, capsys):
    clip = make_clip(tmp_path / "film.mp4", frames=6, tone=False)
    code, err = run_cli(["evaluate", "--video", str(clip), "-o", str(tmp_path / "rep"), "--model",
                         str(tiny_model_path), "--temporal", "0.8"], capsys)
    assert code == 0, err
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "| CDC | warp error |" in report
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())["temporal 0.8"]
    assert all(np.isfinite(summary[k]) for k in ("cdc", "cdc_true", "warp_error", "warp_error_true"))


# ------------------------------------------------------- palette and reference priors ---
def bedroom_film(tmp_path: Path, frames=(0, 12, 24), size=(240, 136)) -> tuple[Path, Path, list[np.ndarray]]:
    """A small gray H.264 piece of the bedroom clip, a reference photo of the same scene (its frame 199,
    not in the piece) and the piece's true frames."""
    from .conftest import SHARED
    clip = SHARED / "video" / "bedroom"
    if not (clip / "00199.jpg").exists():
        pytest.skip("the bedroom clip is not in ../shared/data")
    truths = [np.asarray(Image.open(clip / f"{i:05d}.jpg").convert("RGB").resize(size, Image.Resampling.BOX))
              for i in frames]
    path = tmp_path / "bedroom.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt, s.options = size[0], size[1], "yuv420p", {"crf": "12"}
        for i, t in enumerate(truths):
            f = av.VideoFrame.from_ndarray(gray_rgb(rgb_to_lab(t.astype(np.float32) / 255)[..., 0]), format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    ref = tmp_path / "reference.png"
    Image.open(clip / "00199.jpg").convert("RGB").resize(size, Image.Resampling.BOX).save(ref)
    return path, ref, truths


def test_a_reference_of_the_same_scene_does_not_wash_the_film_out(tmp_path, default_model):
    """With a photo of its own scene, the film keeps its colors (the palette prior from the photo once grayed it
    to less than half the plain run's chroma) and comes closer to the truth.

    The floor is the truth's chroma, not the plain run's: the semantic U-Net colors this bedroom at twice the truth's
    chroma (measured: plain 10.5, reference 3.5, truth 5.2; AuC 92.9 -> 96.1), and a reference that brings it
    nearer the truth must not count as washing it out."""
    from tinct.metrics import ab_error, auc
    film, ref, truths = bedroom_film(tmp_path)
    scores = {}
    for name, opts in (("plain", {}), ("reference", {"reference": str(ref)})):
        out = colorize_video(default_model, film, tmp_path / f"{name}.mp4", VideoOptions(progress=False, **opts))
        labs = [rgb_to_lab(f.astype(np.float32) / 255) for f in probe(out.dest)["frames"]]
        true = [rgb_to_lab(t.astype(np.float32) / 255) for t in truths]
        scores[name] = (np.mean([np.hypot(x[..., 1], x[..., 2]).mean() for x in labs]),
                        np.mean([auc(ab_error(x, t)) for x, t in zip(labs, true)]))
    (plain_chroma, plain_auc), (ref_chroma, ref_auc) = scores["plain"], scores["reference"]
    true_chroma = np.mean([np.hypot(t[..., 1], t[..., 2]).mean() for t in true])
    assert ref_chroma > 0.6 * true_chroma, (scores, true_chroma)
    assert ref_auc > plain_auc, scores


def test_matched_prior_moves_the_frames_colors_onto_the_reference(default_model):
    from tinct.guided.palette import matched_prior, reference_share
    centers = default_model.bin_centers.float()
    lab = np.zeros((20, 20, 3), np.float32)
    lab[:10, :, 1:] = (20.0, 30.0)     # half the reference warm, half gray
    share = reference_share(centers, lab)
    assert abs(float(share.sum()) - 1) < 1e-5
    torch.manual_seed(0)
    logits = torch.randn(1, len(centers), 4, 4)
    before = default_model.annealed_distribution(logits).mean((2, 3))[0]
    prior = matched_prior(default_model, logits, share[None])
    after = default_model.annealed_distribution(logits, log_prior=prior).mean((2, 3))[0]
    assert (after - share).abs().sum() < 0.5 * (before - share).abs().sum()
