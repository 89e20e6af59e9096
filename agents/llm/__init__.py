"""LLM-driven agents and supervisor; imports stay lazy so graph.state can import schemas."""
