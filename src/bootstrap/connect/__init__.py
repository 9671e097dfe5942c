"""Connections: the retry policy as tenacity retryers, MongoDB clients, Redis clients."""
