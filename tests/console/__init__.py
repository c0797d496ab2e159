"""The operator console in a browser."""
