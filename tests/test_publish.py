"""Publishing an experiment's results (experiments/publish.py)."""

from cortexzoo.experiments.publish import publish_experiment


def _experiment(root, figures=("heatmap.png",)):
    (root / "report").mkdir(parents=True)
    (root / "validation").mkdir()
    (root / "report" / "summary.md").write_text("# summary\n")
    (root / "experiment.toml").write_text("[experiment]\nname = 'x'\n")
    (root / "validation" / "scores.csv").write_text("model\n")
    for name in figures:
        (root / "validation" / name).write_bytes(b"png")
    return root


def test_publish_keeps_hand_written_notes_and_replaces_its_own_files(tmp_path):
    """Catches a re-publish that deletes a hand-written README next to the results (it did: the study's
    README vanished when the report was re-published), and one that leaves a figure the experiment no
    longer makes."""
    target = tmp_path / "docs" / "results" / "x"
    publish_experiment(_experiment(tmp_path / "a", figures=("heatmap.png", "old.png")), target)
    (target / "README.md").write_text("notes on these results\n")
    publish_experiment(_experiment(tmp_path / "b"), target)
    assert (target / "README.md").read_text() == "notes on these results\n"
    assert not (target / "old.png").exists()
    assert {"summary.md", "experiment.toml", "scores.csv", "heatmap.png", "costs.json"} <= {
        p.name for p in target.iterdir()}
