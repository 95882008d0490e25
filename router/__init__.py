"""Cost-aware LLM routing: data, embeddings, predictors, rewards, training and evaluation."""

__version__ = "0.1.0"
