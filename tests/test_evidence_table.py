"""Evidence tables: every filled cell cites the text it was read from; nothing is guessed."""

import csv
import io
import json

from typer.testing import CliRunner

from postlab.cli.app import app
from postlab.tools.papers.corpus import load_corpus
from postlab.tools.papers.extraction import COLUMNS, extract_row

runner = CliRunner()


def _cited_text(source: str) -> str:
    """The corpus text a `corpus:<id>#<field>` source names."""
    paper_id, field = source.removeprefix("corpus:").split("#")
    record = next(r for r in load_corpus() if r.id == paper_id)
    card = record.technique
    if field.startswith("effects["):
        return card.effects[int(field[len("effects[") : -1])]
    texts = {"summary": record.summary, "applies_when": card.applies_when if card else ""}
    return texts.get(field, "")


def test_offline_table_cells_all_cite_a_corpus_record(monkeypatch):
    monkeypatch.setenv("POSTLAB_OFFLINE", "1")
    result = runner.invoke(app, ["papers", "table", "GRPO small models", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows and {"grpo"} <= {r["cells"]["method"]["value"].split("(")[-1][:-1] for r in rows}
    filled = [cell for row in rows for cell in row["cells"].values()]
    assert filled and all(cell["source"].startswith("corpus:") for cell in filled)
    # A value read from a text is in that text: extraction quotes, it does not invent.
    for row in rows:
        for column, cell in row["cells"].items():
            first = cell["source"].split(", ")[0]
            if column != "method" and not first.endswith("#recipe"):
                assert cell["value"].split("; ")[0] in _cited_text(first), (column, cell)


def test_a_reported_gain_is_extracted_with_its_claim():
    record = next(r for r in load_corpus() if r.id == "2310.05914")  # NEFTune
    row = extract_row(record)
    assert row.cells["effect"].value == "from 29.79% to 64.69%"
    assert "AlpacaEval" in row.cells["effect"].quote
    assert row.cells["benchmark"].value == "AlpacaEval"
    assert set(row.cells) <= set(COLUMNS)


def test_csv_puts_each_source_beside_its_value(monkeypatch):
    monkeypatch.setenv("POSTLAB_OFFLINE", "1")
    result = runner.invoke(app, ["papers", "table", "DPO preference", "--format", "csv"])
    records = list(csv.DictReader(io.StringIO(result.stdout)))
    assert records and all(
        (r[c] == "") == (r[f"{c}_source"] == "") for r in records for c in COLUMNS
    )
    bad = runner.invoke(app, ["papers", "table", "x", "--format", "xml"])
    assert bad.exit_code == 2
