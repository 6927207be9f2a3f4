"""Model providers: pool detection (keys, Ollama, LiteLLM proxy), litellm streaming, a direct client for
OpenAI-compatible servers, demo agents.

Importing this package does not import litellm; `litellm_client.load_litellm()` does.
"""
