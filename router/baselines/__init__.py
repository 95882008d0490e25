"""RouterBench's baseline routers (KNN, MLP, SVM) as ``Predictor``s built with scikit-learn."""
