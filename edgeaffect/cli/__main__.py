from edgeaffect.cli import main

main()
