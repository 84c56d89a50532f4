"""Rasa pipeline components for Thai; loaded by the Rasa server from config.yml."""
