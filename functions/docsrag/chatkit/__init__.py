"""The ChatKit side of docsrag: request context, visitor tokens and conversation stores."""
