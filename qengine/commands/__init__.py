"""Sub-commands of the ``qengine`` CLI, one module each (``add_parser`` + ``run``)."""
