"""skillchat: a terminal chat assistant that routes every turn to the LLM best suited to it."""

__version__ = "0.1.0"
