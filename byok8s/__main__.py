from byok8s.cli import main

main()
