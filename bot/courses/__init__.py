"""The /learn courses shipped with the bot: one YAML file per course (format: bot.domain.courses)."""
