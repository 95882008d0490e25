"""Routing data in RouterBench's wide layout: loading, validation, splits and download."""

from router.data.io import load_table
from router.data.table import DataValidationError, RoutingTable, validate_frame

__all__ = ["DataValidationError", "RoutingTable", "load_table", "validate_frame"]
