"""Batch routing of request logs with Ray Data (``router route-logs``)."""
