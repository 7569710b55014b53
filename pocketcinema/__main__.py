from pocketcinema.cli import main

main()
