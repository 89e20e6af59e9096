"""Online sources against a local stand-in server in the real formats, and offline fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from support.online_server import OnlineServer, closed_port_url, configure_env
from typer.testing import CliRunner

from postlab.cli.datasets import datasets_app
from postlab.cli.papers import papers_app
from postlab.tools.data import hub as hub_datasets
from postlab.tools.data.columns import ColumnMappingError, map_columns, rows_to_examples
from postlab.tools.io.http import ServiceUnavailable
from postlab.tools.io.rate_limits import reset_service_state
from postlab.tools.papers import arxiv, hf_papers, semantic_scholar
from postlab.tools.papers import online as online_papers
from postlab.tools.papers.evidence import OnlinePaper
from postlab.tools.papers.relevance import technique_hint


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # By default every service points at a closed local port: nothing leaves 127.0.0.1.
    configure_env(monkeypatch, closed_port_url(), tmp_path / "home")
    yield
    reset_service_state()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The stand-in server, with every base-URL variable pointing at it."""
    with OnlineServer() as running:
        configure_env(monkeypatch, running.url, tmp_path / "home")
        yield running


# --- arXiv -----------------------------------------------------------------------------------


def test_arxiv_search_parses_atom_and_sends_query_syntax(server):
    page = arxiv.search_arxiv("direct preference optimization", max_results=3, start=0)
    assert [e.id for e in page.entries] == ["2305.18290", "2404.19733", "2402.03300"]
    dpo = page.entries[0]
    assert dpo.version == 3 and dpo.year == 2023 and dpo.primary_category == "cs.LG"
    assert dpo.authors == ["Rafael Rafailov", "Archit Sharma", "Eric Mitchell"]
    assert dpo.title.endswith("Secretly a Reward Model")  # folded title joined
    assert dpo.pdf_url == "http://arxiv.org/pdf/2305.18290v3"
    assert dpo.html_url == f"{server.url}/html/2305.18290v3"
    assert page.entries[1].doi == "10.48550/arXiv.2404.19733"
    assert (page.total_results, page.start, page.items_per_page) == (4, 0, 3)
    sent = server.seen("/api/query")[0].params
    assert sent["search_query"] == ["all:direct AND all:preference AND all:optimization"]
    assert (sent["start"], sent["max_results"]) == (["0"], ["3"])


def test_arxiv_paging_and_old_style_ids(server):
    entries = list(arxiv.iter_arxiv("ti:preference AND abs:optimization", total=10, page_size=3))
    assert [e.id for e in entries][-1] == "hep-th/9901001" and len(entries) == 4
    starts = [r.params["start"][0] for r in server.seen("/api/query")]
    assert starts == ["0", "3"]
    assert server.seen("/api/query")[0].params["search_query"] == [
        "ti:preference AND abs:optimization"
    ]


def test_arxiv_error_entry_raises(server):
    with pytest.raises(arxiv.ArxivError, match="incorrect id format"):
        arxiv.fetch_arxiv_entries(["1234.12345x"])


def test_arxiv_default_interval_is_three_seconds(monkeypatch):
    monkeypatch.delenv("POSTLAB_ARXIV_MIN_INTERVAL_S")
    with arxiv.arxiv_client() as client:
        assert client.limiter.min_interval_s >= 3.0


def test_arxiv_html_is_split_into_sections(server):
    sections = arxiv.fetch_arxiv_html("2305.18290v3")
    titles = [s.title for s in sections]
    assert titles == [
        "Abstract",
        "1 Introduction",
        "4 Direct Preference Optimization",
        "4.1 Gradient analysis",
        "References",
    ]
    assert sections[3].level == 3
    method = sections[2].text
    assert "\\beta" in method and "β" not in method  # math kept as its TeX
    assert "&" in sections[3].text
    everything = " ".join(s.text for s in sections)
    assert "Back to arXiv" not in everything and "LaTeXML" not in everything
    assert arxiv.fetch_arxiv_html("2999.00001") == []  # no HTML version: 404


# --- HF Papers ------------------------------------------------------------------------------


def test_hf_papers_search_info_and_daily(server):
    found = hf_papers.search_hf_papers("preference optimization", limit=2)
    assert [p.id for p in found] == ["2305.18290", "2404.19733"]
    assert found[0].year == 2023 and found[0].authors[0] == "Rafael Rafailov"
    assert found[0].upvotes == 61
    assert server.seen("/api/papers/search")[0].params == {
        "q": ["preference optimization"],
        "limit": ["2"],
    }
    info = hf_papers.hf_paper_info("2305.18290")
    assert info is not None and info.github_repo.endswith("direct-preference-optimization")
    assert info.linked_models == ["HuggingFaceH4/zephyr-7b-beta", "trl-lib/qwen2-0.5b-dpo"]
    assert info.linked_datasets == ["trl-lib/ultrafeedback_binarized"]
    assert server.seen("/api/models")[0].params["filter"] == ["arxiv:2305.18290"]
    assert hf_papers.hf_paper_info("2999.00001") is None
    daily = hf_papers.daily_papers(date="2024-06-03", limit=5)
    assert len(daily) == 2 and daily[0].ai_keywords == ["GRPO", "small language models"]
    assert server.seen("/api/daily_papers")[0].params["date"] == ["2024-06-03"]


def test_hf_hub_offline_is_honoured(server, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ServiceUnavailable, match="HF_HUB_OFFLINE"):
        hf_papers.search_hf_papers("dpo")
    assert server.count() == 0


# --- Semantic Scholar -----------------------------------------------------------------------


def test_s2_lookup_and_paged_references_and_citations(server):
    paper = semantic_scholar.get_paper("2305.18290v3")
    assert paper is not None and paper.arxiv_id == "2305.18290"
    assert paper.influential_count == 702
    assert server.seen("/graph/v1/paper/")[0].path == "/graph/v1/paper/ARXIV:2305.18290"
    assert semantic_scholar.get_paper("2999.00001") is None
    refs = semantic_scholar.get_references("2305.18290", max_items=50, page_size=2)
    # 7 entries, one unresolved (no paperId): 6 papers over 4 pages following "next"
    assert len(refs.papers) == 6 and not refs.truncated
    offsets = [r.params["offset"][0] for r in server.seen("/graph/v1/paper/ARXIV:2305.18290/ref")]
    assert offsets == ["0", "2", "4", "6"]
    assert "influentialCitationCount" in server.seen("/graph")[-1].params["fields"][0]
    cits = semantic_scholar.get_citations("2305.18290", max_items=3, page_size=2)
    assert len(cits.papers) == 3 and cits.truncated
    no_arxiv = semantic_scholar.get_citations("2305.18290").papers[4]
    assert no_arxiv.arxiv_id is None and no_arxiv.key == no_arxiv.paper_id


def test_s2_api_key_header_and_rates(server, monkeypatch):
    with semantic_scholar.s2_client() as client:
        assert "x-api-key" not in client._client.headers
    monkeypatch.setenv("S2_API_KEY", "secret-key")
    monkeypatch.delenv("POSTLAB_S2_MIN_INTERVAL_S")
    with semantic_scholar.s2_client() as client:
        assert client.limiter.min_interval_s == semantic_scholar.KEYED_INTERVAL_S
    monkeypatch.setenv("POSTLAB_S2_MIN_INTERVAL_S", "0")
    semantic_scholar.get_paper("2305.18290")
    assert server.seen("/graph")[-1].headers.get("x-api-key") == "secret-key"


def test_retries_through_injected_failures(server):
    server.fail(2, status=503, prefix="/api/query")
    server.fail(1, status=429, prefix="/graph", retry_after="0")
    assert len(arxiv.search_arxiv("dpo", 3).entries) == 3
    assert server.count("/api/query") == 3
    assert semantic_scholar.get_paper("2305.18290") is not None
    assert server.count("/graph") == 2


# --- merged search and citation walk --------------------------------------------------------


def test_search_papers_merges_sources_and_corpus(server):
    outcome = online_papers.search_papers("preference optimization", limit=20)
    assert not outcome.offline and outcome.notes == []
    by_id = {p.id: p for p in outcome.papers}
    dpo = by_id["2305.18290"]
    assert set(dpo.sources) == {"arxiv", "hf", "corpus"} and dpo.in_corpus
    assert dpo.technique == "dpo"  # from the corpus card
    iterative = by_id["2404.19733"]
    assert not iterative.in_corpus and iterative.technique == "dpo"  # from the keyword hint
    scores = [p.score for p in outcome.papers]
    assert scores == sorted(scores, reverse=True)
    assert server.count("/api/query") == 1 and server.count("/api/papers/search") == 1


def test_citation_walk_is_breadth_first_with_budget_and_ranking(server):
    small = online_papers.citation_walk(["2305.18290"], "preference optimization", max_papers=5)
    assert len(small.papers) == 5 and small.hops["2305.18290"] == 0
    assert all(hop == 1 for pid, hop in small.hops.items() if pid != "2305.18290")
    assert [p.score for p in small.papers] == sorted((p.score for p in small.papers), reverse=True)
    assert "1707.06347" not in small.hops  # PPO: influential, but off the goal
    walked = set(small.hops)
    assert all(a in walked and b in walked for a, b in small.edges)
    assert ("2310.12036", "2305.18290") in small.edges  # IPO cites DPO
    ipo = next(p for p in small.papers if p.id == "2310.12036")
    assert ipo.in_corpus and ipo.technique == "dpo"

    wide = online_papers.citation_walk(["2305.18290"], "human feedback", max_papers=40)
    assert wide.hops.get("2107.03374") == 2  # reached through InstructGPT's references
    assert ("2203.02155", "2107.03374") in wide.edges
    assert not wide.offline and wide.notes == []


def test_remember_papers_stores_only_online_ones(server):
    class FakeMemory:
        def __init__(self) -> None:
            self.calls: list[tuple] = []

        def add_many(self, kind, texts, metadatas, ids):
            self.calls.append((kind, texts, metadatas, ids))

    outcome = online_papers.search_papers("preference optimization", limit=20)
    memory = FakeMemory()
    stored = online_papers.remember_papers(memory, outcome.papers)
    kind, texts, metadatas, ids = memory.calls[0]
    assert kind == "papers" and stored == len(ids) >= 1
    assert "online-paper-2404.19733" in ids and "online-paper-2305.18290" not in ids
    meta = metadatas[ids.index("online-paper-2404.19733")]
    assert meta["technique"] == "dpo" and meta["source"] == "arxiv"
    assert (
        "Technique: dpo (source: arXiv 2404.19733)" in texts[ids.index("online-paper-2404.19733")]
    )


def test_read_full_text(server):
    paper = OnlinePaper(id="2305.18290", title="DPO", source="arxiv")
    read, note = online_papers.read_full_text(paper)
    assert note is None and read.sections and read.sections[0].title == "Abstract"


def test_technique_hint():
    def hint(title: str, summary: str = "") -> str | None:
        return technique_hint(OnlinePaper(id="x", title=title, summary=summary, source="arxiv"))

    assert hint("Group Relative Policy Optimization for small models") == "grpo"
    assert hint("SimPO: Simple Preference Optimization") == "dpo"
    assert hint("QLoRA: Efficient Finetuning of Quantized LLMs") == "sft_lora"
    assert hint("A curriculum for arithmetic") == "curriculum"
    assert hint("Deduplicating training data") == "data_quality"
    assert hint("Scaling self-training with rejection sampling") == "rejection_sampling"
    assert hint("Instruction tuning with FLAN") == "sft_full"
    assert hint("A study of protein folding") is None


# --- offline fallback -----------------------------------------------------------------------


def test_offline_search_falls_back_to_the_corpus_with_notes():
    outcome = online_papers.search_papers("preference optimization", limit=5)
    assert outcome.offline and outcome.papers
    assert all(p.source == "corpus" for p in outcome.papers)
    assert any(n.startswith("arXiv unreachable") for n in outcome.notes)
    assert any(n.startswith("HF Papers unreachable") for n in outcome.notes)
    assert all(n.endswith("used the bundled corpus") for n in outcome.notes)


def test_offline_walk_falls_back_to_the_corpus():
    outcome = online_papers.citation_walk(["2305.18290v3"], "preference", max_papers=8)
    assert outcome.offline and outcome.papers and len(outcome.papers) <= 8
    assert outcome.hops["2305.18290"] == 0
    assert outcome.notes[0].startswith("Semantic Scholar unreachable")
    unknown = online_papers.citation_walk(["9999.99999"], "group relative policy", max_papers=4)
    assert unknown.papers and unknown.offline


def test_offline_hub_raises_service_unavailable():
    with pytest.raises(ServiceUnavailable):
        hub_datasets.search_datasets("math")
    with pytest.raises(ServiceUnavailable):
        hub_datasets.inspect_dataset("openai/gsm8k")


# --- datasets -------------------------------------------------------------------------------


def test_datasets_search_sends_filters(server):
    found = hub_datasets.search_datasets(
        "math", task="text-generation", size="1K<n<10K", license="mit", limit=5
    )
    assert [d.id for d in found][:2] == ["openai/gsm8k", "HuggingFaceH4/MATH-500"]
    gsm = found[0]
    assert (gsm.license, gsm.size_category, gsm.downloads) == ("mit", "1K<n<10K", 412345)
    assert found[2].gated
    params = server.seen("/api/datasets")[0].params
    assert params["search"] == ["math"] and params["limit"] == ["5"]
    assert params["filter"] == [
        "task_categories:text-generation",
        "size_categories:1K<n<10K",
        "license:mit",
    ]
    with pytest.raises(hub_datasets.HubDatasetError, match="unknown size"):
        hub_datasets.search_datasets("math", size="huge")


def test_inspect_dataset(server):
    found = hub_datasets.inspect_dataset("openai/gsm8k")
    assert (found.license, found.size_category, found.num_rows) == ("mit", "1K<n<10K", 8792)
    assert (found.config, found.split) == ("main", "train")
    assert found.features == {"question": "string", "answer": "string"}
    assert len(found.rows) == 3 and found.rows[0]["question"].startswith("Natalia")
    assert found.mapping is not None and found.mapping.format == "prompt_answer"
    assert (found.mapping.prompt, found.mapping.answer) == ("question", "answer")
    first_rows = server.seen("/first-rows")[0].params
    assert first_rows == {"dataset": ["openai/gsm8k"], "config": ["main"], "split": ["train"]}
    examples = rows_to_examples(found.rows, found.mapping)
    assert examples[0].answer.endswith("#### 72")
    with pytest.raises(hub_datasets.HubDatasetError, match="not found"):
        hub_datasets.inspect_dataset("nobody/nothing")


def test_column_mapping_formats_and_errors():
    chat = [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4"},
            ]
        }
    ]
    mapping = map_columns({"messages": "list[struct{content,role}]"}, chat)
    assert mapping.format == "messages"
    assert rows_to_examples(chat, mapping)[0].model_dump() == {"prompt": "2+2?", "answer": "4"}

    pairs = [{"prompt": "Say hi", "chosen": "hi", "rejected": "go away"}]
    mapping = map_columns(["prompt", "chosen", "rejected"], pairs)
    assert (mapping.format, mapping.chosen) == ("preference", "chosen")
    assert rows_to_examples(pairs, mapping)[0].answer == "hi"

    alpaca = [{"instruction": "Add the numbers", "input": "3 and 4", "output": "7"}]
    mapping = map_columns(["instruction", "input", "output"], alpaca)
    assert (mapping.prompt, mapping.context, mapping.answer) == ("instruction", "input", "output")
    assert rows_to_examples(alpaca, mapping)[0].prompt == "Add the numbers\n\n3 and 4"

    with pytest.raises(ColumnMappingError, match=r"\['image', 'label'\]"):
        map_columns({"image": "Image", "label": "class_label"}, [])
    with pytest.raises(ColumnMappingError, match="empty"):
        map_columns(["question", "answer"], [{"question": "q", "answer": ""}])
    with pytest.raises(ColumnMappingError, match="assistant"):
        map_columns(["messages"], [{"messages": [{"role": "user", "content": "hi"}]}])


def test_feature_type_names():
    name = hub_datasets._type_name
    assert name({"dtype": "string", "_type": "Value"}) == "string"
    turn = {"content": {"dtype": "string", "_type": "Value"}, "role": {"dtype": "string"}}
    assert name({"feature": turn, "_type": "List"}) == "list[struct{content,role}]"
    assert name([turn]) == "list[struct{content,role}]"


def test_load_hub_examples(monkeypatch):
    import datasets

    rows = [{"question": f"q{i}", "answer": str(i)} for i in range(5)]
    seen = {}

    def fake_load(repo_id, name=None, split=None, streaming=False):
        seen.update(repo_id=repo_id, name=name, split=split, streaming=streaming)
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    mapping = map_columns(["question", "answer"], rows)
    examples = hub_datasets.load_hub_examples("acme/arith", mapping, limit=3, config="main")
    assert [e.answer for e in examples] == ["0", "1", "2"]
    assert seen == {"repo_id": "acme/arith", "name": "main", "split": "train", "streaming": True}

    def offline_load(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline_load)
    with pytest.raises(ServiceUnavailable):
        hub_datasets.load_hub_examples("acme/arith", mapping)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ServiceUnavailable, match="HF_HUB_OFFLINE"):
        hub_datasets.load_hub_examples("acme/arith", mapping)


# --- CLI ------------------------------------------------------------------------------------

cli = typer.Typer()
cli.add_typer(papers_app, name="papers")
cli.add_typer(datasets_app, name="datasets")
runner = CliRunner()


@pytest.fixture
def wide(monkeypatch):
    from postlab.cli import output

    monkeypatch.setattr(output.console, "width", 200)


def test_cli_against_the_stand_in(server, wide):
    result = runner.invoke(cli, ["papers", "search", "preference optimization", "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert "2305.18290" in result.output and "arxiv,hf,corpus" in result.output
    assert "offline" not in result.output

    result = runner.invoke(cli, ["papers", "graph", "2305.18290", "--max-papers", "6"])
    assert result.exit_code == 0, result.output
    assert "2403.07691" in result.output and "6 papers" in result.output

    args = ["datasets", "search", "math", "--task", "text-generation", "--license", "mit"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "openai/gsm8k" in result.output and "1K<n<10K" in result.output
    assert server.seen("/api/datasets")[-1].params["filter"] == [
        "task_categories:text-generation",
        "license:mit",
    ]

    result = runner.invoke(cli, ["datasets", "inspect", "openai/gsm8k"])
    assert result.exit_code == 0, result.output
    assert "prompt_answer" in result.output and "license: mit" in result.output

    result = runner.invoke(cli, ["papers", "search", "x", "--source", "nowhere"])
    assert result.exit_code == 2


def test_cli_offline_falls_back_visibly(wide):
    result = runner.invoke(cli, ["papers", "search", "preference optimization"])
    assert result.exit_code == 0, result.output
    assert "offline: used the bundled corpus" in result.output
    assert "arXiv unreachable" in result.output and "2305.18290" in result.output

    result = runner.invoke(cli, ["papers", "graph", "2305.18290", "--hops", "1"])
    assert result.exit_code == 0 and "offline: used the bundled corpus" in result.output

    result = runner.invoke(cli, ["datasets", "search", "addition"])
    assert result.exit_code == 0, result.output
    assert "offline: used the bundled task catalog" in result.output
    assert "addition_2d" in result.output and "sort_list" not in result.output

    # Nothing useful done: a non-zero exit that says why, on stderr.
    result = runner.invoke(cli, ["datasets", "search", "gsm8k"])
    assert result.exit_code == 1 and result.stdout == ""
    assert "no bundled task matches 'gsm8k'" in result.stderr
    result = runner.invoke(cli, ["datasets", "inspect", "openai/gsm8k"])
    assert result.exit_code == 1 and "the Hub is unreachable" in result.stderr
    result = runner.invoke(cli, ["papers", "graph", "not-an-id"])
    assert result.exit_code == 2 and "unknown paper 'not-an-id'" in result.stderr


# --- the live feed ---------------------------------------------------------------------------


def test_the_feed_reads_each_day_ranks_for_a_goal_and_files_in_the_library(
    server, monkeypatch, tmp_path
):
    from typer.testing import CliRunner

    from postlab.cli.app import app
    from postlab.memory.store import LabMemory

    library = tmp_path / "library"
    monkeypatch.setenv("POSTLAB_LIBRARY_DIR", str(library))
    args = ["papers", "feed", "--since", "2024-06-01", "--until", "2024-06-03",
            "--goal", "GRPO arithmetic small model"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    days = [seen.params["date"][0] for seen in server.seen("/api/daily_papers")]
    assert days == ["2024-06-03", "2024-06-02", "2024-06-01"]
    assert result.output.index("2406.01234") < result.output.index("filed")
    hits = LabMemory(library).search("verifiable rewards arithmetic", kinds=["papers"], k=3)
    assert hits and hits[0].metadata["paper_id"] == "2406.01234"
    assert hits[0].metadata["goal"] == "GRPO arithmetic small model"


def test_the_feed_lists_arxiv_categories_for_the_same_days(server, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from postlab.cli.app import app

    monkeypatch.setenv("POSTLAB_LIBRARY_DIR", str(tmp_path / "library"))
    args = ["papers", "feed", "--since", "2024-06-01", "--until", "2024-06-03",
            "--arxiv", "cs.CL,cs.LG", "--goal", "preference optimization"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (listing,) = server.seen("/api/query")
    assert listing.params["search_query"] == [
        "(cat:cs.CL OR cat:cs.LG) AND submittedDate:[202406010000 TO 202406032359]"
    ]
    assert listing.params["sortBy"] == ["submittedDate"]
    # The listing's preference-optimization papers fit the goal best, shown as read from arXiv.
    first = next(line for line in result.stdout.splitlines() if "│ 2" in line)
    assert "2404.19733" in first and "arxiv" in first
    assert "2305.18290" in result.stdout and "2406.01234" in result.stdout
    bad = CliRunner().invoke(app, ["papers", "feed", "--arxiv", "cs.CL;rm"])
    assert bad.exit_code == 2 and "not an arXiv category" in bad.output


def test_the_feed_offline_says_so_and_exits_nonzero(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from postlab.cli.app import app

    monkeypatch.setenv("POSTLAB_LIBRARY_DIR", str(tmp_path / "library"))
    result = CliRunner().invoke(app, ["papers", "feed", "--since", "2024-06-01"])
    assert result.exit_code == 1 and "unreachable" in result.output
    bad = CliRunner().invoke(
        app, ["papers", "feed", "--since", "2024-06-05", "--until", "2024-06-01"]
    )
    assert bad.exit_code == 2 and "after" in bad.output
