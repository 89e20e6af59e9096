"""postlab.tools.models: base-model resolution (aliases, GGUF conversion, local paths, the Hub)."""
