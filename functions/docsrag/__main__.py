"""`python -m docsrag …`"""

from docsrag.cli import main

main()
