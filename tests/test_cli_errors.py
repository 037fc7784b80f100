"""How the command line reports Harpagon's own errors."""

from __future__ import annotations

from typer.testing import CliRunner

from harpagon.cli import app


def test_error_keeps_bracketed_values(tmp_path) -> None:
    """Rich read "[a, zz]" in "edge [a, zz] names unknown module" as markup and dropped it."""
    path = tmp_path / "edge.yaml"
    path.write_text(
        "name: e\nrate: 1\nslo_ms: 100\nmodules:\n  - {name: a, profile: resnet50_v1.5}\n"
        "edges:\n  - [a, zz]\n"
    )
    result = CliRunner().invoke(app, ["plan", "--app", str(path)])
    assert result.exit_code == 2
    assert "edge [a, zz] names unknown module 'zz'" in " ".join(result.output.split())
    assert "Traceback" not in result.output
