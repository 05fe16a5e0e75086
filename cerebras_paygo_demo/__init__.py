"""``cerebras-paygo demo``: the whole library on the embedded emulator, as a plug-in command.

It lives outside the core package because it drives LangChain (``prompt | ChatCerebras |
StrOutputParser``) and LlamaIndex (a query engine), and nothing under ``cerebras_paygo/`` may import
an adapter framework. The core CLI finds it through the ``cerebras_paygo.commands`` entry point
group (see ``pyproject.toml``), never by importing it: ``command.register`` adds the subcommand,
``demo`` holds its body.
"""
