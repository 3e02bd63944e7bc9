from novamove.cli import run

run()
