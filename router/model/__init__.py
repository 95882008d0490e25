"""The cross-attention router (arXiv 2509.09782): network, training, artifacts, family, extension.

Public surface: :class:`router.model.training.TrainConfig`, :func:`router.model.training.train_router`,
:class:`router.model.estimator.CrossAttentionPredictor`, :func:`router.model.artifact.save_artifact` /
:func:`router.model.artifact.load_artifact`. Modules import torch lazily where they can.
"""
