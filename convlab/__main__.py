"""`python -m convlab`: the command line."""

from convlab.cli import main

if __name__ == "__main__":
    main()
