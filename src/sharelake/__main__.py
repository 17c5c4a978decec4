from sharelake.cli.main import main

main()
