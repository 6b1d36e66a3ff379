"""One module per figure of Arora, Cohen & Hazan (2018): `python -m reproduce.figureN`."""
