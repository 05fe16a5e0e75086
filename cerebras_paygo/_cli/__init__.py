"""The bodies of the ``cerebras-paygo`` subcommands (``cerebras_paygo._cli.main`` defines their options)."""
