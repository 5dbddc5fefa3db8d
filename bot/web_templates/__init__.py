"""Jinja2 templates of the pages the bot's web server renders (autoescaped)."""
