from nkr._cli import run

run()
