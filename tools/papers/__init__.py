"""postlab.tools.papers: bundled corpus, arXiv, HF Papers, Semantic Scholar, their merge."""
