"""Yigongti services, one package each."""
