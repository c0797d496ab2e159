"""Agents: the YAML an operator writes, validated, and the store that serves and reloads it.

* `config` — `AgentConfig` / `AgentSet`: one agent per file, every error with file:line:field;
* `store`  — `AgentStore`: the agents a running gateway answers with, reloaded when files change.
"""
