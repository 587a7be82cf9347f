/* units.c - not written yet */
