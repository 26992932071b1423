"""Project commands of ckancrawl (``COMMANDS_MODULE = "ckancrawl.commands"``)."""
