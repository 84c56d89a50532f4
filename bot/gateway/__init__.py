"""The gateway: channel adapters (web chat now; LINE and Telegram next) around one conversation pipeline."""
