"""Cortex LLM router: prefers the local Ollama model and falls back to cloud providers correctly."""

__version__ = "0.1.0"
