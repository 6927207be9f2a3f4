"""Model providers: pool detection (keys, Ollama, LiteLLM proxy), litellm streaming, demo agents.

Importing this package does not import litellm; `litellm_client.load_litellm()` does.
"""
