"""Pictures: a run's curves and per-language bars, and a comparison's rows, as PNG files."""

from __future__ import annotations

from fedlingua.report.plots import compare_figure, curves_figure, languages_figure, save

PNG = b"\x89PNG"


def _record(rnd: int, acc: float) -> dict:
    test = {"fr": {"accuracy": acc}, "lg": {"accuracy": acc / 2}}
    return {"round": rnd, "federations": {"global": {"train_loss": 1.0 / rnd}}, "test": test}


def _results(paradigm: str, acc: float, mb: float) -> dict:
    return {
        "paradigm": paradigm,
        "method": "prompt-encoder",
        "languages": {
            "fr": {"accuracy": acc, "train_examples": 10},
            "yo": {"accuracy": acc / 2, "train_examples": 0},
        },
        "averages": {"average": 0.75 * acc},
        "communication": {"bytes_total": mb * 1e6},
    }


def test_pictures_of_a_run_and_of_a_comparison_are_png_files(tmp_path):
    metrics = [_record(1, 0.4), _record(2, 0.6) | {"dev": {"fr": {"accuracy": 0.5}}}]
    paths = [
        save(curves_figure(metrics), tmp_path / "curves.png"),
        save(languages_figure(_results("federated", 0.6, 1), ["yo"]), tmp_path / "languages.png"),
        save(
            compare_figure([_results("federated", 0.6, 1.5), _results("monolingual", 0.5, 0)]),
            tmp_path / "compare.png",
        ),
    ]
    assert all(p.read_bytes()[:4] == PNG for p in paths)


def test_pictures_of_a_run_without_rounds_still_draw(tmp_path):
    assert save(curves_figure([]), tmp_path / "c.png").read_bytes()[:4] == PNG
    assert save(languages_figure({}), tmp_path / "l.png").read_bytes()[:4] == PNG
