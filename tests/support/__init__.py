"""Helpers shared by the tests: tiny models, scripted chat models, stand-in servers."""
