"""The cross-attention router (arXiv 2509.09782): network, training, artifacts, family, extension.

Public surface: :class:`router.model.config.TrainConfig`, :class:`router.model.estimator.CrossAttentionPredictor`
(``fit``/``predict``), :func:`router.model.artifact.save_artifact` / :func:`router.model.artifact.load_artifact`.
Most users want :class:`router.Router`, which wraps these with the encoder. Modules import torch lazily.
"""
