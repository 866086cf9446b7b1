from dicomweb_archive.cli import main

main()
