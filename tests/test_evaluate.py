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
