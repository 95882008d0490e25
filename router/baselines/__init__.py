"""Baseline routers as ``Predictor``s: RouterBench's KNN, MLP, SVM (scikit-learn), matrix factorisation
(RouteLLM's idea, numpy) and the deployable no-router prior."""
