"""docsrag: turn a Docusaurus documentation site into a chatbot that answers from the docs."""

__version__ = "0.1.0"
