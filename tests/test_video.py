"""Film: round trip (frames, fps, size, audio), frames in/out, resume, scene cuts, damaged files, evaluation."""
from __future__ import annotations

import hashlib
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tinct.cli import main
from tinct.errors import TinctError
from tinct.video import colorize as vcolorize
from tinct.video import sink, source
from tinct.video.colorize import colorize_video, work_dir
from tinct.video.evaluate import ClipScorer
from tinct.video.options import TemporalOptions, VideoOptions
from tinct.video.temporal import Stabilizer, blend_keep_chroma, histogram_distance
from tinct.weights import load_model

W, H, FPS = 64, 48, Fraction(12)


def scene(i: int, cut_at: int | None = None) -> np.ndarray:
    """Frame ``i`` of a panning color pattern; from ``cut_at`` on a different, much brighter shot."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    if cut_at is not None and i >= cut_at:
        rgb = np.stack([200 + 40 * np.sin(y / 5 + i), 220 + 30 * np.cos(x / 7), 210 + 0 * x], -1)
    else:
        x = x + 2 * i  # a slow pan: something for the optical flow to follow
        rgb = np.stack([90 + 60 * np.sin(x / 6), 70 + 50 * np.cos(y / 5), 60 + 40 * np.sin((x + y) / 9)], -1)
    return rgb.clip(0, 255).astype(np.uint8)


def make_clip(path: Path, frames: int = 12, tone: bool = True, cut_at: int | None = None,
              options: dict | None = None) -> Path:
    """An H.264 MP4 (or other container by suffix) of ``frames`` frames at 12 fps, with a 440 Hz AAC tone."""
    with av.open(str(path), "w", options=options or {}) as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        a = out.add_stream("aac", rate=16000, layout="mono") if tone else None
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(scene(i, cut_at), format="rgb24")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))
        if a is not None:
            n, t = a.codec_context.frame_size or 1024, 0
            fmt = a.codec_context.format.name
            while t < 16000 * frames / FPS:
                s = (0.3 * np.sin(2 * np.pi * 440 * (np.arange(n) + t) / 16000)).astype(np.float32)[None]
                af = av.AudioFrame.from_ndarray(s, format=fmt, layout="mono")
                af.sample_rate, af.pts = 16000, t
                t += n
                out.mux(a.encode(af))
            out.mux(a.encode(None))
    return path


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(v)]
    with av.open(str(path)) as c:
        audio = [(s.codec_context.name, s.sample_rate) for s in c.streams.audio]
        digest = hashlib.sha1()
        for p in c.demux(*c.streams.audio):
            if p.dts is not None:
                digest.update(bytes(p))
        return {"frames": frames, "fps": c.streams.video[0].average_rate, "audio": audio,
                "audio_sha1": digest.hexdigest() if audio else None}


@pytest.fixture(scope="module")
def tiny(tiny_model_path):
    return load_model(tiny_model_path)


def run_cli(args, capsys) -> tuple[int, str]:
    """Exit code and what stays visible on stderr (a progress bar redraws its line with carriage returns)."""
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err
    return e.value.code, "".join(line.split("\r")[-1] + "\n" for line in err.split("\n") if line.split("\r")[-1].strip())


def test_round_trip_keeps_frames_fps_size_and_audio(tmp_path, tiny):
    clip = make_clip(tmp_path / "film.mp4", frames=12)
    out = tmp_path / "color.mp4"
    # segments of 5 frames: the output is joined from three encoded parts
    result = colorize_video(tiny, clip, out, VideoOptions(segment_frames=5, batch=4, progress=False))
    a, b = probe(clip), probe(out)
    assert result.frames == 12 and len(b["frames"]) == 12
    assert b["frames"][0].shape == (H, W, 3)
    assert b["fps"] == a["fps"] == FPS
    assert b["audio"] == a["audio"] == [("aac", 16000)]
    assert b["audio_sha1"] == a["audio_sha1"]  # copied packet for packet, never re-encoded
    assert not work_dir(out).exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_colorizes_a_film_and_keeps_its_luminance(tmp_path, tiny_model_path, capsys):
    clip = make_clip(tmp_path / "film.mkv", frames=6, tone=False)
    out = tmp_path / "color.mp4"
    code, err = run_cli(["colorize", str(clip), "-o", str(out), "--model", str(tiny_model_path),
                         "--temporal", "0.5", "--crf", "10"], capsys)
    assert code == 0, err
    src_L = [source._luminance(f) for f in probe(clip)["frames"]]
    out_L = [source._luminance(f) for f in probe(out)["frames"]]
    assert len(out_L) == 6
    drift = np.mean([np.abs(a - b).mean() for a, b in zip(src_L, out_L)])
    assert drift < 2.0, drift
    # the same command again: a finished film is skipped (a rerun resumes), not refused
    code, err = run_cli(["colorize", str(clip), "-o", str(out), "--model", str(tiny_model_path)], capsys)
    assert code == 0 and "0 colorized, 1 already done, 0 failed" in err


def test_numbered_frames_in_and_out(tmp_path, tiny_model_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(5):
        Image.fromarray(scene(i)[:47, :63]).save(frames / f"f{i + 1:03d}.png")  # odd size: 4:4:4 chroma
    film = tmp_path / "film.mp4"
    code, err = run_cli(["colorize", str(frames), "-o", str(film), "--model", str(tiny_model_path), "--fps", "8"],
                        capsys)
    assert code == 0, err
    info = probe(film)
    assert len(info["frames"]) == 5 and info["frames"][0].shape == (47, 63, 3) and info["fps"] == 8
    code, err = run_cli(["colorize", str(film), "-o", str(tmp_path / "out" / "%04d.png"), "--model",
                         str(tiny_model_path)], capsys)
    assert code == 0, err
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == [f"{i:04d}.png" for i in range(5)]
    assert Image.open(written[0]).size == (63, 47)


def test_interrupted_run_resumes_from_finished_segments(tmp_path, tiny, monkeypatch):
    clip = make_clip(tmp_path / "film.mp4", frames=12, tone=False)
    opts = VideoOptions(segment_frames=4, batch=3, progress=False)
    # the frames each run hands the encoder: H.264 through PyAV 18 is not bit-reproducible (the same frames
    # encoded twice can decode a few levels apart), so the stabiliser's restored state is checked before it
    handed = []
    write = sink.SegmentWriter.write
    monkeypatch.setattr(sink.SegmentWriter, "write", lambda self, rgb: (handed[-1].append(rgb.copy()), write(self, rgb)))
    handed.append([])
    whole = probe(colorize_video(tiny, clip, tmp_path / "whole.mp4", opts).dest)["frames"]

    finish = vcolorize._finish_segment
    calls = []

    def finish_then_die(work, seg, *args):
        finish(work, seg, *args)
        calls.append(seg)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after two finished segments

    out = tmp_path / "color.mp4"
    monkeypatch.setattr(vcolorize, "_finish_segment", finish_then_die)
    handed.append([])
    with pytest.raises(KeyboardInterrupt):
        colorize_video(tiny, clip, out, opts)
    monkeypatch.setattr(vcolorize, "_finish_segment", finish)
    assert not out.exists() and len(list(work_dir(out).glob("seg_*.mp4"))) == 2
    handed.append([])
    result = colorize_video(tiny, clip, out, opts)
    assert result.resumed_from == 8 and result.frames == 12
    resumed = probe(out)["frames"]
    assert len(resumed) == 12 and len(handed[2]) == 4  # only the unfinished segment was colorized again
    # the stabiliser's state was restored: the resumed film is the uninterrupted one, frame for frame
    assert all(np.array_equal(a, b) for a, b in zip(handed[0], handed[1][:8] + handed[2]))
    assert all(np.abs(a.astype(int) - b).max() <= 12 for a, b in zip(whole, resumed))

    # killed while joining the parts: the rerun only joins them
    def die(*args):
        raise KeyboardInterrupt

    out2 = tmp_path / "color2.mp4"
    monkeypatch.setattr(vcolorize, "concat_segments", die)
    with pytest.raises(KeyboardInterrupt):
        colorize_video(tiny, clip, out2, opts)
    monkeypatch.undo()
    result = colorize_video(tiny, clip, out2, opts)
    assert result.resumed_from == 12 and result.frames == 12 and len(probe(out2)["frames"]) == 12


def test_scene_cut_resets_propagation():
    a = (np.random.default_rng(0).random((48, 64)) * 40 + 20).astype(np.float32)
    a = np.asarray(Image.fromarray(a).resize((64, 48), Image.Resampling.BICUBIC))
    shifted = np.roll(a, 1, axis=1)
    other = 100 - a * 0.3  # another shot: much brighter, disjoint histogram
    red, green = np.full((2, 48, 64), 20, np.float32), np.full((2, 48, 64), -20, np.float32)
    stab = Stabilizer(TemporalOptions(strength=0.8))
    assert np.array_equal(stab.step(a, red), red) and not stab.cut
    carried = stab.step(shifted, green)
    assert not stab.cut and stab.tracked > 0.5
    assert carried[:, :, 8:-8].mean() > 10  # the earlier color carried along the motion
    assert histogram_distance(stab.state.L, np.clip(other * 2.55, 0, 255).astype(np.uint8)) > 0.4
    after_cut = stab.step(other, green)
    assert stab.cut and np.array_equal(after_cut, green)  # a new shot starts from the model's colors
    # strength 0 is frame by frame
    plain = Stabilizer(TemporalOptions(strength=0))
    plain.step(a, red)
    assert np.array_equal(plain.step(shifted, green), green)


def test_blend_keeps_saturation():
    ab = np.array([20, 0], np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    warped = np.array([0, 20], np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    out = blend_keep_chroma(ab, warped, np.full((2, 2), 0.5, np.float32))
    assert np.allclose(np.hypot(out[0], out[1]), 20, atol=1e-3)  # plain averaging would give 14.1
    assert np.allclose(out[0], out[1])


def test_film_with_a_cut_reports_it(tmp_path, tiny):
    clip = make_clip(tmp_path / "two_shots.mp4", frames=10, tone=False, cut_at=6)
    result = colorize_video(tiny, clip, tmp_path / "out.mp4", VideoOptions(progress=False))
    assert result.cuts == [6]


def _faststart_truncated(tmp_path: Path) -> Path:
    whole = make_clip(tmp_path / "fast.mp4", frames=24, tone=False, options={"movflags": "faststart"})
    data = whole.read_bytes()
    bad = tmp_path / "cut_fast.mp4"
    bad.write_bytes(data[: int(len(data) * 0.6)])  # index intact, frame data cut off
    return bad


def test_damaged_films_fail_with_one_line(tmp_path, tiny_model_path, capsys):
    good = make_clip(tmp_path / "good.mp4", frames=12).read_bytes()
    cases = {
        "random.mp4": np.random.default_rng(1).bytes(20000),
        "cut.mp4": good[: len(good) // 2],       # the index (moov) is at the end: gone
        "text.mov": b"this is not a film\n" * 50,
        "empty.mp4": b"",
    }
    paths = [tmp_path / name for name in cases]
    for p, data in zip(paths, cases.values()):
        p.write_bytes(data)
    paths.append(_faststart_truncated(tmp_path))
    for p in paths:
        out = tmp_path / f"out_{p.stem}.mp4"
        code, err = run_cli(["colorize", str(p), "-o", str(out), "--model", str(tiny_model_path)], capsys)
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and lines[0].startswith("tinct: error:"), (p.name, err)
        assert "Traceback" not in err
        assert not out.exists() and not work_dir(out).exists()


def test_damaged_films_never_hang(tmp_path, tiny):
    good = make_clip(tmp_path / "good.mp4", frames=24, tone=False).read_bytes()
    garbled = bytearray(good)
    rng = np.random.default_rng(2)
    for i in rng.integers(len(good) // 4, len(good), 300):
        garbled[i] = rng.integers(256)
    (tmp_path / "garbled.mp4").write_bytes(bytes(garbled))
    outcomes = {}

    def run(path):
        try:
            colorize_video(tiny, path, tmp_path / f"out_{path.stem}.mp4", VideoOptions(progress=False))
            outcomes[path.name] = "ok"
        except TinctError as e:
            outcomes[path.name] = str(e)
        except BaseException as e:  # anything else is a bug: record it for the assertion below
            outcomes[path.name] = f"BUG {type(e).__name__}: {e}"

    for path in [_faststart_truncated(tmp_path), tmp_path / "garbled.mp4"]:
        t = threading.Thread(target=run, args=(path,), daemon=True)
        t.start()
        t.join(timeout=60)
        assert not t.is_alive(), f"{path.name}: still decoding after 60 s"
        assert not outcomes[path.name].startswith("BUG"), outcomes[path.name]
        assert "\n" not in outcomes[path.name]
    assert "damaged" in outcomes["cut_fast.mp4"]


def test_bad_output_and_options_are_refused(tmp_path, tiny, tiny_model_path, capsys):
    clip = make_clip(tmp_path / "film.mp4", frames=3, tone=False)
    code, err = run_cli(["colorize", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_model_path),
                         "--method", "levin"], capsys)
    assert code == 2 and err.startswith("tinct: error:") and "not films" in err
    with pytest.raises(TinctError, match="film file"):
        from tinct.batch import plan_jobs
        plan_jobs([clip], tmp_path / "out.png")
    with pytest.raises(TinctError, match="encoder"):
        colorize_video(tiny, clip, tmp_path / "o.mp4", VideoOptions(codec="nonsense", progress=False))
    with pytest.raises(TinctError, match="strength"):
        colorize_video(tiny, clip, tmp_path / "o.mp4", VideoOptions(temporal=1.5, progress=False))
    with pytest.raises(TinctError, match="overwrite"):
        colorize_video(tiny, clip, clip, VideoOptions(progress=False))


def test_clip_scorer_on_the_truth_itself():
    s = ClipScorer()
    for i in range(4):
        rgb = scene(i)
        s.add(rgb, rgb, source._luminance(rgb))
    m = s.summary()
    assert m["auc"] == pytest.approx(100) and m["flicker_ratio"] == pytest.approx(1)
    assert m["luminance_drift"] < 0.01 and m["flicker"] > 0


def test_evaluate_video_cli(tmp_path, tiny_model_path, capsys):
    clip = make_clip(tmp_path / "film.mp4", frames=6, tone=False)
    code, err = run_cli(["evaluate", "--video", str(clip), "-o", str(tmp_path / "rep"), "--model",
                         str(tiny_model_path), "--temporal", "0", "--temporal", "0.8"], capsys)
    assert code == 0, err
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "| temporal 0 | 6 |" in report and "| temporal 0.8 | 6 |" in report
    assert (tmp_path / "rep" / "frames.csv").read_text().count("\n") == 13


def test_output_suffixes_agree():
    assert set(sink.CONTAINERS) == source.VIDEO_OUTPUT_SUFFIXES


def test_a_long_segment_encodes_every_frame(tmp_path):
    # more frames than the encoder's look-ahead: the muxer's time base changes mid-segment
    path = tmp_path / "seg.mp4"
    w = sink.SegmentWriter(path, W, H, FPS, VideoOptions().encode_options())
    for i in range(90):
        w.write(scene(i))
    w.finish()
    with av.open(str(path)) as c:
        pts = [f.pts for f in c.decode(video=0)]
    assert len(pts) == 90 and pts == sorted(set(pts))


def test_phone_rotation_is_applied_to_the_pixels(tmp_path, tiny):
    # a phone's portrait film: 64x32 coded pixels with a display matrix turning them 90 deg counter-clockwise
    clip = tmp_path / "portrait.mp4"
    with av.open(str(clip), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
        s.set_display_rotation(90)
        coded = np.full((32, 64, 3), 40, np.uint8)
        coded[:, :16] = 230  # a bright band on the coded left edge: shown at the bottom
        for _ in range(3):
            for packet in s.encode(av.VideoFrame.from_ndarray(coded, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    src = source.ContainerSource(clip)
    assert (src.info.width, src.info.height) == (32, 64)
    out = tmp_path / "color.mp4"
    colorize_video(tiny, clip, out, VideoOptions(progress=False))
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == (32, 64) and not frame.rotation  # upright pixels, no tag to obey
        gray = frame.to_ndarray(format="gray").astype(float)
    assert gray[-12:].mean() > gray[:40].mean() + 100
