"""``notebooks/quickstart.ipynb`` executed headless (its own local Ray, before the session
cluster starts): train → serve → predict → explain, outputs checked."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.helpers import FEATURES, ROOT


def _outputs(nb: nbformat.NotebookNode) -> tuple[str, list[str]]:
    text, kinds = [], []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                text.append(out.text)
            elif out.output_type in ("display_data", "execute_result"):
                kinds += list(out.data)
            elif out.output_type == "error":
                raise AssertionError(f"{out.ename}: {out.evalue}")
    return "".join(text), kinds


def test_quickstart_notebook_runs_and_explains(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("QUICKSTART_DIR", str(tmp_path))
    for var in ("RAY_ADDRESS", "RAY_DASHBOARD_ADDRESS"):  # its own cluster, not someone else's
        monkeypatch.delenv(var, raising=False)
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    where = {"metadata": {"path": str(ROOT)}}
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources=where)
    try:
        client.execute()
    finally:
        nbformat.write(nb, tmp_path / "executed.ipynb")
    text, kinds = _outputs(nb)
    assert "'risk_tier': 'HIGH'" in text
    [anchor] = [line for line in text.splitlines() if line.startswith("IF ")]
    assert "THEN churn (precision" in anchor and any(f in anchor for f in FEATURES)
    assert "adds up: True" in text
    assert "image/png" in kinds and (tmp_path / "quickstart_shap.png").stat().st_size > 1000
    assert "\nstopped\n" in text
