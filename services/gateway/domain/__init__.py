"""Gateway rules as plain Python."""
