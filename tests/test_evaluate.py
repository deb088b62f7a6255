import csv

from tinct.evaluate import GRAY_FLOOR, EvaluateConfig, evaluate


def test_evaluate_writes_report_csv_and_grid(photo_dir, tmp_path, tiny_model_path):
    out = tmp_path / "report"
    summary = evaluate(EvaluateConfig(data=[str(photo_dir)], models=[str(tiny_model_path)], out=str(out)))
    assert list(summary)[0] == GRAY_FLOOR
    floor = summary[GRAY_FLOOR]
    assert floor["images"] == 6
    assert floor["colorfulness"] < 1.0  # gray has no color
    assert 0 <= floor["auc"] <= 100 and floor["auc_rebal"] < floor["auc"]  # rare colors weigh more
    assert floor["luminance_drift"] < 0.5
    for f in ["report.md", "scores.csv", "summary.csv", "grid.png"]:
        assert (out / f).exists()
    rows = list(csv.DictReader(open(out / "scores.csv")))
    assert len(rows) == 12


def test_evaluate_says_what_it_skipped_and_why(photo_dir, tmp_path, tiny_model_path, capsys):
    """A near-gray photo and a damaged file are not scored; the CLI, report.md and skipped.csv all say so."""
    from PIL import Image

    from tinct.cli import main
    Image.new("RGB", (64, 48), (120, 120, 120)).save(photo_dir / "gray.png")
    (photo_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "report"
    try:
        main(["evaluate", str(photo_dir), "--model", str(tiny_model_path), "-o", str(out)])
    except SystemExit as e:
        assert e.code == 0
    captured = capsys.readouterr()
    assert "broken.jpg: unreadable" in captured.err
    assert "skipped 2 of 8 files: 1 near-gray, 1 unreadable" in captured.out
    report = (out / "report.md").read_text()
    assert "(6 photos)" in report and "2 of 8 files were not scored: 1 near-gray, 1 unreadable" in report
    rows = {r["image"].rsplit("/", 1)[-1]: r["reason"] for r in csv.DictReader(open(out / "skipped.csv"))}
    assert set(rows) == {"gray.png", "broken.jpg"}
    assert rows["gray.png"].startswith("near-gray (colorfulness 0.0 < 5")
