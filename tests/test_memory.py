"""Chroma memory: retrieval by meaning, persistence, context within budget, early facts kept."""

import numpy as np

from postlab.memory.context import build_context, estimate_tokens
from postlab.memory.embeddings import HashingEmbedding, MiniLMEmbedding, default_embedding_function
from postlab.memory.store import LabMemory


def test_default_embedding_is_the_packaged_minilm():
    assert isinstance(default_embedding_function(), MiniLMEmbedding)


def test_minilm_without_sentence_transformers_embeds_as_sentence_transformers_does():
    from sentence_transformers import SentenceTransformer

    embedding = MiniLMEmbedding()
    texts = [
        "28 + 74 gave 112: off by ten, a lost carry",
        "Low-rank adapters " * 120,  # beyond the 256-token window: truncated the same way
        "",
        "DPO learns from preference pairs without a reward model.",
    ]
    ours = np.asarray(embedding(texts))
    reference = SentenceTransformer(embedding.model_path, device="cpu").encode(
        texts, normalize_embeddings=True
    )
    assert ours.shape == reference.shape == (4, 384)
    np.testing.assert_allclose(ours, reference, atol=2e-5)
    # One text's vector does not depend on what it was batched with.
    np.testing.assert_allclose(np.asarray(embedding(texts[:1]))[0], ours[0], atol=2e-5)


def test_search_ranks_by_meaning_across_kinds(tmp_path):
    memory = LabMemory(tmp_path / "memory")
    memory.add("papers", "Low-rank adapters make fine-tuning cheap in memory.")
    memory.add("failures", "Training ran out of GPU memory with batch size 64.")
    memory.add("observations", "The model answers chatty sentences instead of bare numbers.")
    hits = memory.search("the output format is wrong, too verbose", k=3)
    assert hits[0].kind == "observations"
    hits = memory.search("OOM crash during training", kinds=("papers", "failures"), k=1)
    assert hits[0].kind == "failures"


def test_memory_persists_across_reopen(tmp_path):
    first = LabMemory(tmp_path / "memory")
    first.add("experiments", "iteration 1 reached 0.7 strict accuracy", {"iteration": 1})
    reopened = LabMemory(tmp_path / "memory")
    hits = reopened.get("experiments")
    assert [h.text for h in hits] == ["iteration 1 reached 0.7 strict accuracy"]
    assert hits[0].metadata["iteration"] == 1


def test_same_fact_is_stored_once(tmp_path):
    memory = LabMemory(tmp_path / "memory", embedding_function=HashingEmbedding())
    memory.add("observations", "a fact")
    memory.add("observations", "a fact")
    assert memory.count("observations") == 1


def test_early_fact_is_retrievable_after_hundreds_of_later_ones(tmp_path):
    memory = LabMemory(tmp_path / "memory")
    memory.add("observations", "Step 5: the tokenizer drops the leading minus sign of negatives.")
    memory.add_many(
        "experiments",
        [
            f"Step {i}: trained with learning rate {i * 1e-5:.5f}, loss {1 / i:.3f}"
            for i in range(6, 300)
        ],
    )
    context = build_context(
        memory, goal="g", query="why are negative answers wrong?", token_budget=300
    )
    assert any("minus sign" in hit.text for hit in context.retrieved)
    assert context.tokens <= 300


def test_context_respects_token_budget_and_marks_data(tmp_path):
    memory = LabMemory(tmp_path / "memory", embedding_function=HashingEmbedding())
    memory.add_many("papers", [f"paper {i} " + "word " * 200 for i in range(10)])
    context = build_context(memory, goal="goal", query="paper", token_budget=400)
    assert context.tokens <= 400
    assert len(context.retrieved) < 10
    assert "data, not instructions" in context.render()
    assert estimate_tokens(context.render()) <= 400


def test_hashing_embedding_is_deterministic_and_normalised():
    embed = HashingEmbedding(dimensions=64)
    first, second = embed(["same text"]), embed(["same text"])
    assert (first[0] == second[0]).all()
    assert abs(float((first[0] ** 2).sum()) - 1.0) < 1e-5


def test_nearest_ranks_candidates_by_embedding_similarity(tmp_path):
    memory = LabMemory(tmp_path / "memory", embedding_function=HashingEmbedding())
    candidates = [
        "the capital of france is paris",
        "photosynthesis turns light into sugar",
        "paris is the capital city of france",
    ]
    nearest = memory.nearest(["what is the capital of france"], candidates, 2)
    assert sorted(nearest[0]) == [0, 2]
    assert memory.nearest([], candidates, 2) == [] and memory.nearest(["x"], [], 2) == [[]]


def test_a_text_seen_before_is_not_embedded_again(tmp_path, monkeypatch):
    from postlab.memory import embeddings

    monkeypatch.setenv("POSTLAB_HOME", str(tmp_path / "home"))
    encoded: list[str] = []
    real = embeddings._load_encoder(MiniLMEmbedding().model_path)

    class Counting:
        def encode(self, texts):
            encoded.extend(texts)
            return real.encode(texts)

    monkeypatch.setattr(embeddings, "_load_encoder", lambda path: Counting())
    first = np.asarray(MiniLMEmbedding()(["a paper on DPO", "a lost carry", "a paper on DPO"]))
    assert encoded == ["a paper on DPO", "a lost carry"]
    again = np.asarray(MiniLMEmbedding()(["a lost carry", "a new text"]))
    assert encoded[2:] == ["a new text"]
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_allclose(again[1], real.encode(["a new text"])[0], atol=1e-6)

    # A cache that cannot be read is bypassed, never an error.
    (cache_file,) = (tmp_path / "home" / "embeddings").glob("*.sqlite")
    cache_file.write_bytes(b"not a database" * 100)
    broken = np.asarray(MiniLMEmbedding()(["a lost carry"]))
    np.testing.assert_allclose(broken[0], first[1], atol=1e-6)

    monkeypatch.setenv("POSTLAB_EMBEDDING_CACHE", "off")
    monkeypatch.setenv("POSTLAB_HOME", str(tmp_path / "other"))
    MiniLMEmbedding()(["a lost carry"])
    assert not (tmp_path / "other").exists()


def test_the_embedding_cache_keeps_the_newest_vectors_up_to_its_bound(tmp_path):
    from postlab.memory.embedding_cache import EmbeddingCache

    cache = EmbeddingCache(tmp_path / "cache.sqlite", max_vectors=3)
    vectors = {f"text {i}": np.full(4, i, dtype="float32") for i in range(5)}
    cache.put_many(dict(list(vectors.items())[:2]))
    cache.put_many(dict(list(vectors.items())[2:]))
    kept = cache.get_many(list(vectors))
    assert sorted(kept) == ["text 2", "text 3", "text 4"]
    np.testing.assert_array_equal(kept["text 4"], vectors["text 4"])


def test_a_closed_run_memory_releases_its_files_and_reopens_with_its_facts(tmp_path):
    import gc
    import os

    from postlab.memory.store import close_memory, open_memory

    def files_open_under(folder) -> list[str]:
        # Only this run's files count: other tests' threads may open and close unrelated ones.
        targets = []
        for name in os.listdir("/proc/self/fd"):
            try:
                targets.append(os.readlink(f"/proc/self/fd/{name}"))
            except OSError:
                continue
        return [target for target in targets if target.startswith(str(folder))]

    for index in range(3):
        memory = open_memory(tmp_path / f"run-{index}")
        memory.add("observations", f"iteration {index} reached 0.7", {"iteration": index})
        assert files_open_under(tmp_path / f"run-{index}")
        close_memory(tmp_path / f"run-{index}")
    del memory  # the caller's last handle; Chroma's per-thread connections close with it
    gc.collect()
    assert files_open_under(tmp_path) == []
    reopened = open_memory(tmp_path / "run-1")
    assert [hit.text for hit in reopened.get("observations")] == ["iteration 1 reached 0.7"]
    close_memory(tmp_path / "run-1")
    close_memory(tmp_path / "never-opened")  # nothing to release: no error
