"""The router as a Ray Serve application: Embedder -> Scorer -> Dispatcher (FastAPI ingress).

``serve_app.app:build_app`` builds it; pure request logic lives in ``serve_app.parse`` and
``serve_app.protocol`` so it can be tested without Serve.
"""
