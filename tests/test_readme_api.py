"""The README's Python API block runs as written (on the tiny test model)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_api_block_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text(encoding="utf-8")
    block = re.search(r"### Python API.*?```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "| federated prompt-encoder |" in out
    assert (tmp_path / "runs" / "notebook" / "curves.png").is_file()
    assert (tmp_path / "runs" / "notebook-compare" / "compare.png").is_file()
    labels = ("language", "territory", "currency", "script")
    assert sum(line.split(" ")[0] in labels for line in out.splitlines()) >= 3
