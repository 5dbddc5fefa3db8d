"""Playbooks: YAML operations scripts and their pure engine.

- `playbooks.schema`: the file format (pydantic, strict) and `parse_playbook_file`;
- `playbooks.loader`: reads `playbooks/*.yaml` and the locale keys (the package's only file IO);
- `playbooks.engine`: step-by-step playbooks (the new-partner 7-day start): state + events + now -> decisions;
- `playbooks.rhythm`: tiered operations: activity segments and their recurring touches.
"""
