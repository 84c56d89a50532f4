"""Rasa custom actions: read the tracker, ask the domain layer (`bot.assistant`), reply."""
