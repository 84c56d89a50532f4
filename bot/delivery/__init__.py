"""Durable delivery between the platforms and the conversation: inbox, dispatcher, outbox, notices."""
