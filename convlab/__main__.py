from convlab.cli import main

main()
