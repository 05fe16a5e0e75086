"""The bodies of the ``cerebras-paygo`` subcommands (``cerebras_paygo.cli`` defines their options)."""
