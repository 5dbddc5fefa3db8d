"""The one path for bot-initiated messages: the persisted outbox and its sender."""
